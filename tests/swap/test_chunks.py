"""A video swapped in chunks on worker processes equals the single-process swap: frames, timestamps, audio,
pixels within the encoder's tolerance; tracks are stitched across chunk boundaries; the plan is sound."""
from __future__ import annotations

import itertools

import av
import numpy as np
import pytest

from facewright import api
from facewright.config import MarkOptions, SwapOptions, VideoOptions
from facewright.media import read_video
from facewright.media.segments import Chunk, KeyframeIndex, keyframe_index, plan_chunks, read_chunk
from facewright.swap import chunks as swap_chunks
from facewright.swap.footage import FaceTrack, Footage
from facewright.swap.run import swap as run_swap
from facewright.workers import InlinePool
from facewright.workspace import Workspace
from tests.conftest import SWAP_MODEL as MODEL

# The bound a chunked swap keeps to the single-process one, per frame: the two encoders restart at different
# frames (each chunk starts on a keyframe of its own), the landmark model restarts its tracking and the
# motion transfer its running reference at each chunk, and the color statistics of a stitched track come
# from other sample frames. Measured on this clip (3 chunks, crf 18): the first 11 frames identical (then
# the first chunk's encoder looks ahead to its own end), 0.1-1.7 levels mean difference per frame, the worst
# frame's PSNR 40.2 dB (40.4 dB without the motion transfer).
MEAN_LEVELS = 2.5
MIN_PSNR = 36.0


def test_keyframes_are_found_and_chunks_decode_alone_as_in_the_whole(long_clip):
    index = keyframe_index(long_clip)
    assert index.frames == 144 and [f for f, _ in index.keyframes] == [0, 24, 48, 72, 96, 120]
    whole = list(read_video(long_clip))
    for chunk in plan_chunks(index, 3, 30):
        frames = list(read_chunk(long_clip, chunk))
        assert [f.index for f in frames] == list(range(chunk.first, chunk.stop))
        assert all(np.array_equal(f.image, whole[f.index].image) and f.pts == whole[f.index].pts for f in frames)


@pytest.mark.parametrize(("parts", "min_frames", "firsts"), [
    (1, 10, [0]), (2, 10, [0, 72]), (3, 10, [0, 48, 96]), (4, 10, [0, 24, 72, 96]),
    (3, 60, [0, 72]),  # chunks of at least 60 frames: only two fit
    (8, 100, [0]),  # too short to split at all
])
def test_chunks_start_on_keyframes_cover_every_frame_and_keep_a_minimum_length(parts, min_frames, firsts):
    index = KeyframeIndex(144, tuple((f, f * 1000) for f in range(0, 144, 24)), None)
    planned = plan_chunks(index, parts, min_frames)
    assert [c.first for c in planned] == firsts
    assert sum(c.frames for c in planned) == 144 and planned[-1].stop == 144
    assert all(c.start_pts == c.first * 1000 for c in planned)
    assert [c.stop_pts for c in planned] == [c.start_pts for c in planned[1:]] + [None]  # decoding stops there
    assert all(c.frames >= min_frames for c in planned) or len(planned) == 1


def _track(id: int, frames: range, x: float) -> FaceTrack:
    square = np.array([[x, 0], [x + 50, 0], [x + 50, 50], [x, 50]], np.float32)
    return FaceTrack(id, list(frames), [f / 30 for f in frames], [square] * len(frames),
                     samples=[np.full((4, 4, 3), f, np.uint8) for f in frames[::12]])


def _part(chunk: Chunk, tracks: list[FaceTrack], first: np.ndarray, last: np.ndarray, cuts=()):
    return swap_chunks.ChunkFootage(chunk, Footage(tracks, list(cuts), chunk.frames), first, last, 0.0, 0.0)


def test_a_track_running_across_a_boundary_is_stitched_and_a_cut_there_keeps_them_apart():
    gray = np.full((36, 64, 3), 128, np.uint8)
    a, b = Chunk(0, 0, 100, 0), Chunk(1, 100, 100, 100)
    parts = [_part(a, [_track(0, range(0, 100), 10), _track(1, range(0, 40), 300)], gray, gray),
             _part(b, [_track(0, range(100, 200), 12), _track(1, range(150, 200), 300)], gray, gray)]
    merged = swap_chunks.merge_footage(parts, 0.35)
    assert merged.frames == 200 and merged.cuts == []
    assert [t.frames[0] for t in merged.tracks] == [0, 0, 150] and len(merged.tracks[0].frames) == 200
    assert len(merged.tracks[0].samples) <= 16 and merged.tracks[0].samples[-1][0, 0, 0] >= 180  # spans the whole
    red = np.zeros_like(gray)
    red[..., 0] = 255
    parts[1].first = red  # a cut between the two chunks: nothing carries over it
    cut = swap_chunks.merge_footage(parts, 0.35)
    assert cut.cuts == [100] and [t.frames[0] for t in cut.tracks] == [0, 0, 100, 150]


@pytest.mark.slow
def test_a_video_swapped_in_chunks_on_workers_equals_the_single_process_swap(model_ws, long_clip, tmp_path,
                                                                            monkeypatch):
    monkeypatch.setattr(swap_chunks, "MIN_CHUNK_SECONDS", 1.0)  # the clip is 4.8 s
    outputs = {}
    with Workspace.open(model_ws) as ws:
        for workers in (1, 3):
            [result] = run_swap(ws, long_clip, tmp_path / f"w{workers}.mp4", MODEL, SwapOptions(workers=workers),
                                MarkOptions(), VideoOptions(), signer=api.keys_show(), trust=api.consent_trust(),
                                payloads=itertools.count(11))
            outputs[workers] = result
            if workers == 1:  # an id is unique per catalog: the second output takes it over
                ws.conn.execute("DELETE FROM marks WHERE payload = ?", (f"{11:016x}",))
    single, chunked = outputs[1], outputs[3]
    assert "swapped in 3 chunks on 3 workers" in chunked.notes and not any("chunks" in n for n in single.notes)
    assert_same_swap(single, chunked, long_clip, model_ws)
    assert not list(tmp_path.glob(".*")) and sorted(p.name for p in tmp_path.iterdir()) == ["w1.mp4", "w3.mp4"]


def assert_same_swap(single, chunked, clip, workspace) -> None:
    """`chunked` (a swap in chunks, same watermark id) equals `single` within the stated bound, and verifies."""
    assert chunked.frames == single.frames == 144 and chunked.tracks_seen == single.tracks_seen == 1
    assert chunked.frames_swapped == single.frames_swapped
    one, many = list(read_video(single.output)), list(read_video(chunked.output))
    assert [f.pts for f in many] == [f.pts for f in one]
    for a, b in zip(one, many, strict=True):
        diff = a.image.astype(np.float64) - b.image
        assert np.abs(diff).mean() < MEAN_LEVELS and 10 * np.log10(255 ** 2 / max((diff ** 2).mean(), 1e-9)) > MIN_PSNR
    assert _audio(chunked.output) == _audio(single.output) == _audio(clip)
    [report] = api.verify([chunked.output], workspace=workspace)
    assert report.outcome == "verified" and report.watermark.payload_hex == chunked.payload_hex
    assert report.record["fingerprint_frames"] == 144


def _audio(path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


class Interrupting(InlinePool):
    """Two workers' chunks, run here; the render of chunk `stop_at` is interrupted (Ctrl-C) when given. `apart`:
    pass 2 as two stages (the model's work, then the rest), as a Ray cluster with GPUs runs it."""

    workers = 2

    def __init__(self, stop_at: int | None = None, apart: bool = False):
        self.stop_at, self.rendered, self.apart = stop_at, [], apart

    def map(self, fn, context, items, done=None):
        def run(context, item):
            if fn is swap_chunks.render_chunk:
                if item.chunk.index == self.stop_at:
                    raise KeyboardInterrupt
                self.rendered.append(item.chunk.index)
            return fn(context, item)
        return super().map(run, context, items, done)


@pytest.mark.slow
def test_resume_keeps_the_chunks_an_interrupted_swap_rendered_and_gives_the_same_file(model_ws, long_clip, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.setattr(swap_chunks, "MIN_CHUNK_SECONDS", 1.0)
    output = tmp_path / "out.mp4"

    def swap(pool, payload, resume, name="out.mp4"):
        with Workspace.open(model_ws) as ws:
            [result] = run_swap(ws, long_clip, tmp_path / name, MODEL, SwapOptions(preview=4), MarkOptions(),
                                VideoOptions(), signer=api.keys_show(), trust=api.consent_trust(),
                                payloads=itertools.count(payload), pool=pool, resume=resume)
            return result

    first = Interrupting(stop_at=1)
    with pytest.raises(KeyboardInterrupt):
        swap(first, 31, resume=False)
    assert first.rendered == [0] and not output.exists()
    assert sorted(p.name for p in (tmp_path / ".out.mp4.chunks").iterdir()) == \
        ["chunk_0000.mp4", "chunk_0000.npz", "swap.json"]
    again = Interrupting()
    resumed = swap(again, 41, resume=True)
    assert again.rendered == [1]  # chunk 0 was kept
    assert resumed.payload_hex == f"{31:016x}"  # the interrupted run's watermark id, in chunk 0's frames too
    assert "1 chunk(s) rendered by an interrupted run were kept" in resumed.notes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "out.preview.png"]  # the chunks are gone
    with Workspace.open(model_ws) as ws:
        ws.conn.execute("DELETE FROM marks WHERE payload = ?", (f"{31:016x}",))
    # nothing to resume (all chunks rendered); pass 2 in two stages, the model's and the compositing's
    whole = swap(Interrupting(apart=True), 31, resume=True, name="whole.mp4")
    assert "rendered in GPU tasks, composited in CPU tasks" in whole.notes
    assert whole.stages["workers: model"] > 0 and whole.stages["workers: blend"] > 0  # both tasks' times reported
    assert whole.stages["workers: decode, mark, encode"] > 0
    assert all(np.array_equal(a.image, b.image) for a, b in zip(read_video(resumed.output), read_video(whole.output),
                                                                 strict=True))
    [report] = api.verify([whole.output], workspace=model_ws)
    assert report.outcome == "verified"
