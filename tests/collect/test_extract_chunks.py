"""A video extracted in chunks on worker processes gives the faceset one process gives: the same faces kept
and rejected for the same reasons, byte-identical crop files, the workers' stage times reported."""
from __future__ import annotations

import pytest

from facewright.collect import chunks
from facewright.collect.extract import extract
from facewright.config import ExtractOptions
from facewright.media.segments import Chunk
from facewright.workers import InlinePool
from facewright.workspace import Workspace

ROWS = ("SELECT frame_index, face_index, status, reason, crop_path, crop_sha256 FROM faces "
        "ORDER BY frame_index, face_index")


def _extract(root, clip, workers, pool=None):
    with Workspace.init(root) as ws:
        report = extract([clip], "ben", ws, ExtractOptions(workers=workers, size=128), pool=pool)
        return report, ws.conn.execute(ROWS).fetchall(), ws.conn.execute("SELECT track FROM faces").fetchall()


@pytest.mark.slow
def test_a_video_extracted_in_chunks_on_workers_equals_the_single_process_faceset(long_clip, tmp_path, monkeypatch):
    monkeypatch.setattr(chunks, "MIN_CHUNK_SECONDS", 1.0)  # the clip is 4.8 s: 3 chunks of 48 frames
    single, one_rows, _ = _extract(tmp_path / "one", long_clip, 1)
    many, many_rows, tracks = _extract(tmp_path / "many", long_clip, 3)
    assert many_rows == one_rows and len(one_rows) == 144
    [a], [b] = single.inputs, many.inputs
    assert (b.frames, b.kept, b.rejected) == (a.frames, a.kept, a.rejected) == (144, a.kept, a.rejected)
    assert a.kept >= 3 and a.rejected["duplicate"] >= 100  # a man talking to camera: most frames repeat a face
    assert len({t for (t,) in tracks}) == 3  # one track per chunk: extraction cuts its tracks at the boundaries
    for name in ("faces", "masks"):
        for path in (tmp_path / "one" / "facesets" / "ben" / name).iterdir():
            assert (tmp_path / "many" / "facesets" / "ben" / name / path.name).read_bytes() == path.read_bytes()
    assert set(many.stage_seconds) >= {"decode", "landmarks", "align", "write"}


def test_chunked_extraction_runs_on_any_pool_and_a_short_video_is_not_split(long_clip, sample, tmp_path,
                                                                            monkeypatch):
    calls = []

    class Counting(InlinePool):
        workers = 2

        def map(self, fn, context, items, done=None):
            calls.append([c.first for c in items])
            return super().map(fn, context, items, done)

    monkeypatch.setattr(chunks, "MIN_CHUNK_SECONDS", 2.0)
    _extract(tmp_path / "a", long_clip, 0, Counting())
    assert calls == [[0, 72]]
    monkeypatch.setattr(chunks, "MIN_CHUNK_SECONDS", 4.0)  # 4.8 s cannot hold two chunks of 4 s
    assert chunks.extract_chunks(long_clip, __import__("facewright.media", fromlist=["probe"]).probe(long_clip),
                                 2) == [Chunk(0, 0, 144, 0)]
