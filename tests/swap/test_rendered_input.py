"""A render folder's JSON files damaged or not ours: `composite` refuses patch.json with a PatchError naming it
(exit 2, no traceback); a damaged track record makes a render run again render that track, never crash or skip it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from facewright.cli import main
from facewright.errors import PatchError
from facewright.media.writer import VideoWriter
from facewright.provenance.keys import load_identity, load_trust
from facewright.swap.rendered import FORMAT, MANIFEST, RenderWriter, read_render, track_files, track_record

DAMAGED = {
    "not JSON": b"{garbage\n",
    "not UTF-8": b"\xff\xfe\x00",
    "a list": b"[1, 2]\n",
    "a string": b'"patch"\n',
    "no format": b'{"tracks": []}\n',
    "no seal": json.dumps({"format": FORMAT, "tracks": []}).encode(),
    "a garbled seal": json.dumps({"format": FORMAT, "seal": {"signer_chain": 5}}).encode(),
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_or_foreign_patch_json_is_a_patch_error_naming_it(tmp_path, content):
    (tmp_path / MANIFEST).write_bytes(content)
    load_identity()
    with pytest.raises(PatchError) as caught:
        read_render(tmp_path, tmp_path / "input.mp4", "0" * 64, load_trust())
    assert caught.value.path == tmp_path / MANIFEST and caught.value.exit_code == 2
    assert "render" in caught.value.fix


def test_composite_with_a_garbled_patch_json_exits_2_naming_it(tmp_path, capsys):
    video = tmp_path / "input.mp4"
    with VideoWriter(video, width=64, height=64, fps=30) as writer:
        for pts in range(3):
            writer.write(np.zeros((64, 64, 3), np.uint8), pts)
    folder = tmp_path / "render"
    folder.mkdir()
    (folder / MANIFEST).write_text("{garbage")
    assert main(["init", "--workspace", str(tmp_path / "ws")]) == 0
    code = main(["composite", str(video), "--patch", str(folder), "-o", str(tmp_path / "out.mp4"),
                 "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(folder / MANIFEST) in err and "--render-only" in err and "internal error" not in err
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("record", [b"{garbage", b"[]", b'{"render": 1, "sha256": "x"}'], ids=["not JSON", "a list",
                                                                                                 "wrong fields"])
def test_a_damaged_track_record_renders_the_track_again(tmp_path, record):
    facts = {"input": {"sha256": "a" * 64}, "model": {"sha256": "b" * 64}, "render": {}}
    folder = tmp_path / "render"
    folder.mkdir()
    for name in track_files(0).values():
        (folder / name).write_bytes(b"kept from an earlier render")
    (folder / track_record(0)).write_bytes(record)
    writer = RenderWriter(folder, facts, 30, None, plan=None, signer=None, record=None)
    try:
        assert not writer.done(0) and writer.reused == set()
    finally:
        writer.close()
