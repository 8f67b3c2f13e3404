"""Output safety (issue 19): outputs checked before the work, a full disk as a typed error with nothing
half-written, and what killed processes left beside outputs removed by the next writer (never a live one's)."""
import errno
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facewright.errors import DiskFullError, OutputError
from facewright.files import atomic_path, check_output, sweep_stale, temp_folder
from facewright.locks import HOST_TAG, Lock, Owner, pid_alive, process_started
from facewright.media import write_image


def _dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_an_existing_folder_as_output_is_refused_at_once(tmp_path):
    (tmp_path / "out.mp4").mkdir()
    with pytest.raises(OutputError, match="is an existing folder") as caught:
        check_output(tmp_path / "out.mp4", [])
    assert caught.value.exit_code == 2 and "give a file name inside it" in caught.value.fix


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/sys refuses new files, even to root")
def test_an_output_folder_nothing_can_be_written_in_is_refused_at_once():
    """Tried for real: permission bits say nothing to root (the tests may run as root) or of read-only mounts."""
    with pytest.raises(OutputError, match="cannot write in the output folder") as caught:
        check_output("/sys/facewright-test/out.mp4", [])
    assert caught.value.path.as_posix() == "/sys" and caught.value.exit_code == 2


def test_a_full_disk_while_writing_is_a_typed_error_and_leaves_nothing(tmp_path, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(DiskFullError, match=r"the disk is full \(\d+\.\d MB free in .*\)") as caught:
        write_image(np.zeros((8, 8, 3), np.uint8), tmp_path / "face.png")
    assert caught.value.path == tmp_path / "face.png" and caught.value.exit_code == 2
    assert "free space" in caught.value.fix and list(tmp_path.iterdir()) == []


def test_temporary_names_carry_their_writer(tmp_path):
    with atomic_path(tmp_path / "clip.mp4") as tmp:
        assert tmp.name.startswith(f".clip.{os.getpid()}-{HOST_TAG}-") and ".partial" in tmp.name
    with temp_folder(tmp_path, "swap") as folder:
        assert os.path.basename(folder).startswith(f".facewright-swap-{os.getpid()}-{HOST_TAG}-")


def test_the_next_writer_removes_what_dead_writers_left_and_keeps_live_ones(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    left = [tmp_path / f".facewright-swap-{dead}-{HOST_TAG}-k2j3h4", tmp_path / f".facewright-mark-{dead}-{HOST_TAG}-x"]
    for folder in left:
        folder.mkdir()
        (folder / "unsigned.mp4").write_bytes(b"half")
    left.append(tmp_path / f".out.{dead}-{HOST_TAG}-0123abcd.partial.mp4")
    left[-1].write_bytes(b"half")
    kept = [tmp_path / f".facewright-swap-{live}-{HOST_TAG}-abc",
            tmp_path / f".out.{live}-{HOST_TAG}-89abcdef.partial.mp4",
            tmp_path / f".facewright-swap-{dead}-ffffff-abc",  # another host's: cannot be checked from here
            tmp_path / "notes.partial.txt"]  # not a facewright temporary name
    kept[0].mkdir()
    for path in kept[1:]:
        path.write_bytes(b"x")
    write_image(np.zeros((4, 4, 3), np.uint8), tmp_path / "frame.png")  # the next command writing here
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in kept] + ["frame.png"])
    assert sweep_stale(tmp_path) == []  # once per folder per process


def test_owners_and_locks_die_with_their_process(tmp_path):
    me = Owner.current()
    assert me.alive() and pid_alive(me.pid, me.started)
    parent = Owner(os.getppid(), me.host, process_started(os.getppid()))
    assert parent.alive()
    if parent.started is not None:  # a pid now used by a later process is not the owner recorded
        assert not Owner(parent.pid, me.host, parent.started + 1).alive()
    assert not Owner(_dead_pid(), me.host, None).alive()
    assert Owner(_dead_pid(), "another-host", None).alive()  # cannot be checked from here
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from facewright.locks import Lock\n"
                               "with Lock(sys.argv[1], 'model m', fix='wait'):\n"
                               "    print('held', flush=True); time.sleep(60)", str(tmp_path / ".lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match=f"model m is in use by process {holder.pid}"):
            Lock(tmp_path / ".lock", "model m", fix="wait").__enter__()
    finally:
        holder.kill()
        holder.wait()
    with Lock(tmp_path / ".lock", "model m", fix="wait"):  # the killed holder's lock went with it
        pass
