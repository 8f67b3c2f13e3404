import json
import os
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from facewright.cli import main
from facewright.errors import WorkspaceError
from facewright.workspace import MIGRATIONS, Migration, RunStatus, Workspace, resolve_root


def test_init_creates_catalog_with_wal_and_foreign_keys(tmp_path):
    with Workspace.init(tmp_path / "ws") as ws:
        assert ws.catalog.is_file() and ws.outputs.is_dir() and ws.runs.is_dir()
        assert ws.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ws.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert ws.schema_version == MIGRATIONS[-1].version
        tables = {r[0] for r in ws.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"schema_version", "identities", "media", "runs", "outputs"} <= tables
        with pytest.raises(sqlite3.IntegrityError):  # an output must belong to a run
            ws.conn.execute("INSERT INTO outputs (run_id, path, sha256, kind, created_at) "
                            "VALUES (999, 'x', 'y', 'video', 'now')")


def test_init_twice_keeps_records(tmp_path):
    with Workspace.init(tmp_path) as ws:
        ws.identity_id("alice")
    with Workspace.init(tmp_path) as ws:
        assert ws.identity_id("alice") == 1 and ws.identity_id("bob") == 2


def test_root_from_argument_env_or_default(monkeypatch, tmp_path):
    monkeypatch.delenv("FACEWRIGHT_WORKSPACE", raising=False)
    assert resolve_root() == resolve_root(None).__class__("facewright-workspace")
    monkeypatch.setenv("FACEWRIGHT_WORKSPACE", str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"


def test_open_missing_workspace_names_the_fix(tmp_path):
    with pytest.raises(WorkspaceError, match="no facewright workspace") as caught:
        Workspace.open(tmp_path / "none")
    assert "facewright init --workspace" in str(caught.value)


def test_forward_migration_backs_up_and_upgrades(tmp_path):
    Workspace.init(tmp_path).close()
    extra = Migration(MIGRATIONS[-1].version + 1, "notes", ("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)",))
    with Workspace.open(tmp_path, migrations=(*MIGRATIONS, extra)) as ws:
        assert ws.schema_version == extra.version
        ws.conn.execute("INSERT INTO notes (text) VALUES ('hi')")
    backup = tmp_path / f"catalog.sqlite.bak-v{MIGRATIONS[-1].version}"
    assert backup.is_file()
    with sqlite3.connect(backup) as old:
        assert old.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == MIGRATIONS[-1].version


def test_failed_migration_rolls_back(tmp_path):
    Workspace.init(tmp_path).close()
    broken = Migration(MIGRATIONS[-1].version + 1, "broken", ("CREATE TABLE ok_part (id INTEGER)", "NOT SQL"))
    expected = f"migration to schema {broken.version} .broken. failed.*stays at schema {MIGRATIONS[-1].version}"
    with pytest.raises(WorkspaceError, match=expected):
        Workspace.open(tmp_path, migrations=(*MIGRATIONS, broken))
    with Workspace.open(tmp_path) as ws:
        assert ws.schema_version == MIGRATIONS[-1].version
        assert not ws.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'ok_part'").fetchone()


def test_newer_catalog_is_refused(tmp_path):
    Workspace.init(tmp_path).close()
    with sqlite3.connect(tmp_path / "catalog.sqlite") as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'future', 'later')")
    with pytest.raises(WorkspaceError, match="schema 99"):
        Workspace.open(tmp_path)


def test_damaged_catalog_is_a_workspace_error(tmp_path):
    (tmp_path / "catalog.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(WorkspaceError, match="cannot be read"):
        Workspace.open(tmp_path)


def test_runs_media_and_outputs(tmp_path):
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x")
    with Workspace.init(tmp_path / "ws") as ws:
        media = ws.add_media(source, "ab" * 32, "video", width=640, height=360, frames=10)
        assert ws.add_media(source, "ab" * 32, "video") == media  # same content: one record
        with ws.run("demo", {"crf": 18}) as run:
            assert json.loads((ws.runs / str(run.id) / "config.json").read_text()) == {"crf": 18}
            assert _run_row(ws, run.id)["status"] == RunStatus.RUNNING
            ws.add_output(run.id, source, "cd" * 32, "video", media)
        row = _run_row(ws, run.id)
        assert row["status"] == "done" and row["finished_at"] and json.loads(row["config_json"]) == {"crf": 18}


def _run_row(ws, run_id):
    return ws.conn.execute("SELECT status, error, finished_at, config_json FROM runs WHERE id = ?",
                           (run_id,)).fetchone()


@pytest.mark.parametrize("raised, status", [(KeyboardInterrupt(), "interrupted"), (ValueError("bad"), "failed")])
def test_a_run_that_raises_is_recorded_as_such(tmp_path, raised, status):
    with Workspace.init(tmp_path / "ws") as ws:
        with pytest.raises(type(raised)), ws.run("swap", {}) as run:
            raise raised
        row = _run_row(ws, run.id)
        assert row["status"] == status and repr(raised) == row["error"] and row["finished_at"]
        with ws.run("swap", {}) as run:
            run.end(RunStatus.FAILED, "every file of the batch failed")
        assert tuple(_run_row(ws, run.id))[:2] == ("failed", "every file of the batch failed")


def test_a_transaction_writes_all_or_nothing(tmp_path):
    with Workspace.init(tmp_path / "ws") as ws:
        with pytest.raises(RuntimeError), ws.transaction():
            ws.identity_id("alice")
            raise RuntimeError("disk full, say")
        with ws.transaction():
            ws.identity_id("bob")
        assert [r[0] for r in ws.conn.execute("SELECT name FROM identities")] == ["bob"]


# Each process imports, says it is ready, then waits for the go-file: their migrations start together. What
# `facewright init` runs (api.init), without the command line's start-up (torch and the models' wrappers: seconds
# of a core per process, eight processes a test).
INIT_AT_ONCE = """
import os, sys, time
from facewright.workspace import Workspace
ready, go, root = sys.argv[1:]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
Workspace.init(root).close()
"""


def _init_at_once(folder, root, processes: int = 4) -> list[subprocess.Popen]:
    go = folder / "go"
    procs = [subprocess.Popen([sys.executable, "-c", INIT_AT_ONCE, str(folder / f"ready{i}"), str(go), str(root)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(processes)]
    deadline = time.monotonic() + 60
    while len(list(folder.glob("ready*"))) < processes and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    return procs


def test_concurrent_inits_of_a_fresh_workspace_all_succeed(tmp_path):
    """Four processes initialise one new folder at once: one migrates, the others wait and find it done (twice:
    the lock is what is under test, not the odds of a collision)."""
    for round_ in range(2):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        procs = _init_at_once(folder, folder / "ws")
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, errors
        with Workspace.open(folder / "ws") as ws:
            assert ws.schema_version == MIGRATIONS[-1].version
            versions = [r[0] for r in ws.conn.execute("SELECT version FROM schema_version ORDER BY version")]
            assert versions == [m.version for m in MIGRATIONS]


def test_several_pending_migrations_apply_together_or_not_at_all(tmp_path):
    Workspace.init(tmp_path, migrations=MIGRATIONS[:1]).close()
    broken = Migration(MIGRATIONS[-1].version + 1, "broken", ("NOT SQL",))
    with pytest.raises(WorkspaceError, match="stays at schema 1"):
        Workspace.open(tmp_path, migrations=(*MIGRATIONS, broken))
    with sqlite3.connect(tmp_path / "catalog.sqlite") as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1
    assert (tmp_path / "catalog.sqlite.bak-v1").is_file()



def test_a_run_whose_process_died_is_closed_as_interrupted_when_the_workspace_is_next_opened(tmp_path):
    """A SIGKILL or a power cut runs no cleanup: the next opening sees the run's process gone."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # ended and reaped: its pid names no process
    with Workspace.init(tmp_path) as ws:
        with ws.run("swap", {}) as live:
            owner = ws.conn.execute("SELECT pid, host, pid_started FROM runs WHERE id = ?", (live.id,)).fetchone()
            assert tuple(owner)[:2] == (os.getpid(), socket.gethostname())
            dead = ws.conn.execute("INSERT INTO runs (command, config_json, facewright_version, status, started_at, "
                                   "pid, host) VALUES ('swap', '{}', '0', 'running', 'then', ?, ?)",
                                   (child.pid, socket.gethostname())).lastrowid
            elsewhere = ws.conn.execute("INSERT INTO runs (command, config_json, facewright_version, status, "
                                        "started_at, pid, host) VALUES ('swap', '{}', '0', 'running', 'then', ?, "
                                        "'another-host')", (child.pid,)).lastrowid
            with Workspace.open(tmp_path) as again:
                assert again.close_dead_runs() == []  # the first opening closed it already
            row = _run_row(ws, dead)
            assert row["status"] == "interrupted" and row["finished_at"]
            assert f"process {child.pid} ended without closing the run" in row["error"]
            assert _run_row(ws, live.id)["status"] == "running"  # this process is alive
            assert _run_row(ws, elsewhere)["status"] == "running"  # another machine's: cannot be checked here


def test_init_in_a_folder_that_cannot_be_written_is_a_workspace_error(tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    if os.geteuid() == 0:  # root writes through the mode bits: make the mkdir refuse as it would for a user
        real_mkdir = type(locked).mkdir

        def refused(self, *args, **kwargs):
            if self.is_relative_to(locked) and self != locked:
                raise PermissionError(13, "Permission denied", str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(type(locked), "mkdir", refused)
    try:
        for root in (locked / "ws", locked / "deeper" / "ws"):
            with pytest.raises(WorkspaceError, match="cannot create the workspace folder") as caught:
                Workspace.init(root)
            assert caught.value.path == root and caught.value.exit_code == 2
            assert "can write to" in caught.value.fix
        assert main(["init", "--workspace", str(locked / "ws")]) == 2
        err = capsys.readouterr().err
        assert str(locked / "ws") in err and "internal error" not in err
        assert list(locked.iterdir()) == []
    finally:
        os.chmod(locked, 0o700)
