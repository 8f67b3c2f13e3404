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


def test_round_trip_keeps_frames_timing_and_audio_bytes(sample, tmp_path):
    source = sample(WOLFGANG)
    result = transcode(source, tmp_path / "out.mp4", options=VideoOptions(preset="veryfast"))
    before, after = probe(source), probe(result.output)
    assert result.frames == after.video.frames == 472 and result.audio_copied
    assert after.video.fps == pytest.approx(before.video.fps)
    assert abs(after.video.duration - before.video.duration) < 1 / before.video.fps
    assert shown_packet_pts(result.output) == shown_packet_pts(source)
    assert audio_packets(result.output) == audio_packets(source)


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


def test_pcm_audio_is_reencoded_to_aac_for_mp4(tmp_path):
    source = tmp_path / "pcm.mov"
    write_clip(source, list(range(0, 30 * 512, 512)), Fraction(1, 15360), audio="pcm_s16le", audio_start=8000)
    out = transcode(source, tmp_path / "out.mp4").output
    before, after = probe(source).audio, probe(out).audio
    assert (before.codec, after.codec) == ("pcm_s16le", "aac")
    one_aac_frame = 1024 / 16000
    # AAC adds one frame of priming and pads the last frame: at most two frames longer in the stream header.
    assert before.duration <= after.duration <= before.duration + 2 * one_aac_frame
    with av.open(str(out)) as container:  # the audio still starts 0.5 s in: A/V sync kept
        stream = container.streams.audio[0]
        first = min(p.pts for p in container.demux(stream) if p.size) * stream.time_base
    assert first == pytest.approx(0.5, abs=one_aac_frame)


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
