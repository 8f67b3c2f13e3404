"""Checkpoint files: verified before they replace anything, pruned only below the step just written."""
from __future__ import annotations

import pytest

from facewright.errors import CheckpointError
from facewright.train.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint, set_aside_later


def test_a_corrupt_later_checkpoint_never_costs_the_one_just_written(tmp_path):
    (tmp_path / "step_0000009.pt").write_bytes(b"PK\x03\x04 truncated")  # a damaged later file, left alone
    for step in (1, 2, 3):
        save_checkpoint({"step": step}, tmp_path, step, keep=1)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000003.pt", "step_0000009.pt"]
    assert load_checkpoint(tmp_path / "step_0000003.pt")["step"] == 3
    with pytest.raises(CheckpointError, match="cannot be read") as caught:
        load_checkpoint(tmp_path / "step_0000009.pt")
    assert "step_0000003.pt" in caught.value.fix


def test_keep_counts_the_new_checkpoint_and_later_ones_are_set_aside(tmp_path):
    for step in range(1, 6):
        save_checkpoint({"step": step}, tmp_path, step, keep=3)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000003.pt", "step_0000004.pt", "step_0000005.pt"]
    moved = set_aside_later(tmp_path, 3)
    assert [p.name for p in moved] == ["step_0000004.pt", "step_0000005.pt"]
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000003.pt"]
    assert all(p.parent.name == "rejected" and p.is_file() for p in moved)


def test_nothing_partial_is_left_when_a_state_cannot_be_saved(tmp_path):
    with pytest.raises(Exception):  # noqa: B017 - torch's own error for an unpicklable value
        save_checkpoint({"step": 1, "bad": lambda: None}, tmp_path, 1)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_saving_is_a_typed_error_and_keeps_the_earlier_checkpoint(tmp_path, monkeypatch):
    import errno

    import torch

    from facewright.errors import DiskFullError

    save_checkpoint({"step": 1}, tmp_path, 1)

    def full(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(DiskFullError, match="the disk is full") as caught:
        save_checkpoint({"step": 2}, tmp_path, 2)
    assert caught.value.path == tmp_path / "step_0000002.pt" and caught.value.exit_code == 2
    assert [p.name for p in tmp_path.iterdir()] == ["step_0000001.pt"]  # nothing half-written, the last good kept
