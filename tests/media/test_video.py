from fractions import Fraction

import av
import numpy as np
import pytest

from facewright.config import VideoOptions
from facewright.errors import InvalidMediaError
from facewright.media import VideoReader, VideoWriter, probe, read_video
from facewright.media.transcode import transcode
from tests.media.helpers import audio_packets, write_clip

WOLFGANG = "WolfgangLanger_Pexels.mp4"


def shown_packet_pts(path) -> list[int]:
    """The demuxer's view, independent of our reader: pts of every packet a player shows, in order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(p.pts for p in container.demux(stream) if p.size and not p.is_discard)


def test_probe_sample(sample):
    info = probe(sample(WOLFGANG))
    video, audio = info.video, info.audio
    assert (video.width, video.height, video.frames) == (640, 360, 472)
    assert video.fps == pytest.approx(24000 / 1001)
    assert video.time_base == Fraction(1, 24000) and not video.variable_frame_rate
    assert audio.codec == "aac" and audio.sample_rate == 48000
    assert info.duration == pytest.approx(19.69, abs=0.01)
    assert info.problems == ()


def test_every_frame_and_timestamp_matches_the_packet_list(sample):
    path = sample(WOLFGANG)
    frames = [(f.index, f.pts, f.image.shape) for f in read_video(path)]
    expected = shown_packet_pts(path)
    assert len(frames) == len(expected) == 472
    assert [pts for _, pts, _ in frames] == expected
    assert [i for i, _, _ in frames] == list(range(472))
    assert {shape for _, _, shape in frames} == {(360, 640, 3)}


def test_edit_list_discarded_frames_are_not_counted(sample):
    """no_face.mp4 holds 98 packets of which the edit list hides 3: probe and reader agree on 95."""
    path = sample("no_face.mp4")
    decoded = list(read_video(path))
    assert probe(path).video.frames == len(decoded) == len(shown_packet_pts(path)) == 95


@pytest.mark.parametrize("name", [WOLFGANG, "single_face.mp4"])  # AAC from 0; MP3 with a negative first pts
def test_round_trip_keeps_frames_timing_and_audio_packets(name, sample, tmp_path):
    source = sample(name)
    result = transcode(source, tmp_path / "out.mp4", options=VideoOptions(preset="veryfast"))
    before, after = probe(source), probe(result.output)
    assert result.frames == after.video.frames == before.video.frames and result.audio_copied
    assert after.video.fps == pytest.approx(before.video.fps)
    assert abs(after.video.duration - before.video.duration) < 1 / before.video.fps
    assert shown_packet_pts(result.output) == shown_packet_pts(source)
    assert audio_packets(result.output) == audio_packets(source)  # (pts, dts, bytes) of each packet


def test_round_trip_of_hevc_mov_with_late_audio_keeps_sync(sample, tmp_path):
    """face_noface.mov: HEVC, audio starting 2.4 s in. The bytes are copied; the MP4 muxer stores the audio
    delay as an edit in its 1/1000 s movie time scale, so the pts may move by under 1 ms (34 of 44100 here)."""
    source = sample("face_noface.mov")
    result = transcode(source, tmp_path / "out.mp4", options=VideoOptions(preset="ultrafast"))
    assert result.frames == probe(source).video.frames and result.audio_copied
    assert shown_packet_pts(result.output) == shown_packet_pts(source)
    before, after = audio_packets(source), audio_packets(result.output)
    assert [b for _, _, b in after] == [b for _, _, b in before]
    with av.open(str(source)) as container:
        time_base = container.streams.audio[0].time_base
    shifts = {(a_pts - b_pts) * time_base for (b_pts, _, _), (a_pts, _, _) in zip(before, after, strict=True)}
    assert len(shifts) == 1 and abs(shifts.pop()) < Fraction(1, 1000)  # one constant shift: no drift


def test_round_trip_pixels_stay_close(sample, tmp_path):
    source = sample("single_face.mp4")
    out = transcode(source, tmp_path / "out.mp4").output
    pairs = list(zip(read_video(source), read_video(out), strict=True))
    error = np.mean([np.abs(a.image.astype(int) - b.image).mean() for a, b in pairs[::8]])
    assert error < 3.0  # crf 18: no color-matrix or range shift, only codec noise


def test_mp3_audio_is_copied_into_mp4(sample, tmp_path):
    source = sample("single_face.mp4")
    out = transcode(source, tmp_path / "out.mp4").output
    assert probe(out).audio.codec == "mp3"
    assert audio_packets(out) == audio_packets(source)


def audio_span(path) -> tuple[str, float, float]:
    """(codec, first packet's time, last packet's end) in seconds, from the packets: MKV/AVI streams carry
    no duration of their own."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packets = [p for p in container.demux(stream) if p.size]
    first, last = packets[0], packets[-1]
    return (stream.codec_context.name, float(first.pts * stream.time_base),
            float((last.pts + last.duration) * stream.time_base))


# PCM with a channel layout (MOV mono), and PCM with only a channel count (MKV, AVI stereo 48 kHz).
# AVI cannot delay its audio, so its track starts with the video.
PCM_SOURCES = [("pcm.mov", 16000, "mono", 0.5), ("pcm.mkv", 48000, "stereo", 0.5), ("pcm.avi", 48000, "stereo", 0.0)]


@pytest.mark.parametrize("name, rate, layout, start", PCM_SOURCES)
def test_pcm_audio_is_reencoded_to_aac_for_mp4(tmp_path, name, rate, layout, start):
    source = tmp_path / name
    write_clip(source, list(range(0, 30 * 512, 512)), Fraction(1, 15360), audio="pcm_s16le", rate=rate,
               layout=layout, audio_start=round(start * rate))
    out = transcode(source, tmp_path / "out.mp4").output
    (codec_in, first_in, end_in), (codec_out, first_out, end_out) = audio_span(source), audio_span(out)
    assert (codec_in, codec_out) == ("pcm_s16le", "aac")
    assert probe(out).audio.channels == (2 if layout == "stereo" else 1)
    one_aac_frame = 1024 / rate
    # AAC's priming frame starts one frame early and its last frame is padded: A/V sync kept within a frame
    # (and 1 ms: MKV timestamps are in milliseconds).
    assert first_in == pytest.approx(start, abs=1e-3)
    assert first_in - one_aac_frame - 1e-3 <= first_out <= first_in
    assert end_in <= end_out <= end_in + one_aac_frame


def test_variable_frame_rate_timestamps_survive(tmp_path):
    pts = [0, 400, 900, 1000, 1800, 2000, 2100, 3000, 3100, 4200]
    source = tmp_path / "vfr.mp4"
    write_clip(source, pts, Fraction(1, 12000))
    assert probe(source).video.variable_frame_rate
    out = transcode(source, tmp_path / "out.mp4").output
    assert [f.pts for f in read_video(out)] == pts
    assert probe(out).video.variable_frame_rate


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_display_rotation_is_applied(tmp_path, rotation):
    source = tmp_path / "rotated.mp4"
    images = write_clip(source, list(range(0, 5 * 512, 512)), Fraction(1, 15360), size=(64, 32), rotation=rotation,
                        crf=0)
    info = probe(source).video
    assert info.rotation == rotation
    assert (info.width, info.height) == ((32, 64) if rotation % 180 else (64, 32))
    decoded = next(iter(read_video(source))).image
    upright = np.rot90(images[0], k=rotation // 90)  # counter-clockwise, as players show it
    assert decoded.shape == upright.shape
    assert np.abs(decoded.astype(int) - upright).mean() < 4
    raw = next(iter(VideoReader(source, autorotate=False))).image
    assert raw.shape == images[0].shape


def test_odd_sizes_are_padded_to_even(tmp_path):
    image = np.full((33, 65, 3), 120, np.uint8)
    with VideoWriter(tmp_path / "odd.mp4", width=65, height=33, fps=25) as writer:
        for _ in range(3):
            writer.write(image)
    frames = list(read_video(tmp_path / "odd.mp4"))
    assert len(frames) == 3 and frames[0].image.shape == (34, 66, 3)
    assert np.abs(frames[0].image[:33, :65].astype(int) - 120).max() <= 2


def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out" / "video.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(target, width=32, height=32, fps=25) as writer:
            writer.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("crash mid-way")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_writer_refuses_wrong_frame_size(tmp_path):
    with VideoWriter(tmp_path / "v.mp4", width=32, height=32, fps=25) as writer:
        with pytest.raises(ValueError, match="32x32"):
            writer.write(np.zeros((16, 32, 3), np.uint8))
        writer.write(np.zeros((32, 32, 3), np.uint8))
    assert probe(tmp_path / "v.mp4").video.frames == 1


def test_h265_option(tmp_path, sample):
    out = transcode(sample("single_face.mp4"), tmp_path / "out.mp4",
                    options=VideoOptions(codec="libx265", crf=28, preset="ultrafast")).output
    info = probe(out)
    assert info.video.codec == "hevc" and info.video.frames == 72


def test_bad_audio_source_leaves_no_partial_output(tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not media\n" * 10)
    with pytest.raises(InvalidMediaError):
        VideoWriter(tmp_path / "out" / "v.mp4", width=32, height=32, fps=25, audio_from=notes)
    assert list((tmp_path / "out").iterdir()) == []


def write_raw_h264(path, frames: int, fps: int = 25) -> None:
    """An Annex B elementary stream: no container, so no frame carries a pts."""
    with av.open(str(path), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 9 * i, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def test_frames_without_pts_are_timed_by_the_frame_rate(tmp_path):
    source = tmp_path / "raw.h264"
    write_raw_h264(source, frames=20)
    times = [f.time for f in read_video(source)]
    assert len(times) == 20
    assert np.allclose(np.diff(times), 1 / 25)  # not 1 tick of the demuxer's 1/1200000 s time base
    assert not probe(source).video.variable_frame_rate
    out = transcode(source, tmp_path / "out.mp4", options=VideoOptions(preset="ultrafast")).output
    assert probe(out).video.duration == pytest.approx(20 / 25, abs=1 / 25)
    assert [f.time for f in read_video(out)] == pytest.approx(times)


def test_avi_index_is_not_taken_for_a_frame_count(tmp_path):
    """AVI's header counts frames in its own ticks and empty chunks (here hundreds for 25 frames): a whole
    AVI must not be called truncated."""
    source = tmp_path / "clip.avi"
    write_clip(source, list(range(0, 25 * 512, 512)), Fraction(1, 12800), audio="libmp3lame", rate=48000,
               layout="stereo")
    with av.open(str(source)) as container:
        assert container.streams.video[0].frames != 25  # the claim the old check compared with
    info = probe(source)
    assert info.problems == () and info.video.frames == 25
    assert len(list(read_video(source))) == 25
    result = transcode(source, tmp_path / "out.mp4", options=VideoOptions(preset="ultrafast"))
    assert result.frames == 25 and result.audio_copied
