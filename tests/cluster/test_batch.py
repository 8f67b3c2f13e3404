"""`facewright batch`: the jobs file checked as a whole before any shot runs, shots skipped when done, a bad
shot failing alone, and end to end: three shots, one a corrupt video, then a re-run that only retries it."""
from __future__ import annotations

import json
import os
from itertools import islice
from pathlib import Path

import pytest

from facewright import api
from facewright.cli import main
from facewright.cluster import batch
from facewright.cluster.batch import Outcome, load_jobs
from facewright.errors import DiskFullError, InputNotFoundError, OptionError
from facewright.media import MediaKind, VideoWriter, read_video
from tests.conftest import SWAP_MODEL as MODEL
from tests.conftest import file_digest


def write_jobs(folder: Path, text: str, name: str = "jobs.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


# --- the jobs file -------------------------------------------------------------------------------------------


def test_defaults_are_merged_and_paths_are_relative_to_the_jobs_file(tmp_path, monkeypatch):
    monkeypatch.chdir("/")  # relative paths follow the file, not the folder the command runs in
    path = write_jobs(tmp_path, '''
workspace = "ws"
[defaults]
model = "pair"
crf = 20
detail = 1          # an int where the option is a float: a number all the same
[[shot]]
name = "sh010"
input = "plates/sh010.mp4"
output = "out/sh010.mp4"
detail = 0.5
[[shot]]
input = "/abs/sh020.mov"
model = "other"
reference = "refs/ben.png"
label = "manipulated"
''')
    plan = load_jobs(path)
    assert plan.jobs == path and plan.workspace == tmp_path / "ws" and plan.state_path == tmp_path / "jobs.state.json"
    first, second = plan.shots
    assert (first.name, first.input, first.output, first.model) == (
        "sh010", tmp_path / "plates/sh010.mp4", tmp_path / "out/sh010.mp4", "pair")
    assert first.options == {"crf": 20, "detail": 0.5}
    assert (second.name, second.input, second.output, second.model) == ("sh020", Path("/abs/sh020.mov"), None, "other")
    assert second.options == {"crf": 20, "detail": 1.0, "reference": str(tmp_path / "refs/ben.png"),
                              "label": "manipulated"}
    assert isinstance(second.options["detail"], float)
    assert load_jobs(path, workspace="elsewhere").workspace == Path("/elsewhere")  # the flag: from the cwd


def test_the_options_hash_follows_what_decides_the_output(tmp_path):
    def shot(extra: str, model: str = "m"):
        [only] = load_jobs(write_jobs(tmp_path, f'[[shot]]\ninput = "a.mp4"\nmodel = "{model}"\n{extra}')).shots
        return only.options_hash

    plain = shot("")
    assert shot("detail = 1.0") == plain  # the default, given: the same output
    assert shot("workers = 3") == shot('device = "cpu"') == plain  # how it runs, not what it makes
    assert len({plain, shot("detail = 0.5"), shot("crf = 20"), shot("", "n"), shot('output = "x.mp4"')}) == 5


REFUSALS = {
    "unknown top key": ('wrkspace = "ws"\n[[shot]]\ninput = "a.mp4"\nmodel = "m"\n',
                        "the top of the file: unknown key 'wrkspace'", "did you mean 'workspace'?"),
    "unknown option": ('[[shot]]\nname = "sh010"\ninput = "a.mp4"\nmodel = "m"\ndetial = 0.5\n',
                       "shot 1 (sh010): unknown key 'detial'", "did you mean 'detail'?"),
    "unknown default": ('[defaults]\nlable = "none"\n[[shot]]\ninput = "a.mp4"\nmodel = "m"\n',
                        "[defaults]: unknown key 'lable'", "did you mean 'label'?"),
    "no input": ('[[shot]]\ninput = "a.mp4"\nmodel = "m"\n[[shot]]\nname = "b"\nmodel = "m"\n',
                 "shot 2 (b) has no input", 'add input = "PATH"'),
    "no model": ('[[shot]]\ninput = "a.mp4"\n', "shot 1 has no model", "set model"),
    "no shots": ('[defaults]\nmodel = "m"\n', "no shots", "[[shot]]"),
    "a shot's key in defaults": ('[defaults]\noutput = "o.mp4"\n[[shot]]\ninput = "a.mp4"\nmodel = "m"\n',
                                 "[defaults] sets 'output'", "into the [[shot]] tables"),
    "same name": ('[defaults]\nmodel = "m"\n[[shot]]\ninput = "x/a.mp4"\noutput = "1.mp4"\n'
                  '[[shot]]\ninput = "y/a.mp4"\noutput = "2.mp4"\n',
                  "shots 'a' and 'a' have the same name", "its own name"),
    "same output": ('[defaults]\nmodel = "m"\n[[shot]]\ninput = "a.mp4"\noutput = "o.mp4"\n'
                    '[[shot]]\ninput = "b.mp4"\noutput = "./o.mp4"\n',
                    "shots 'a' and 'b' have the same output", "its own output"),
    "same default output": ('[defaults]\nmodel = "m"\n[[shot]]\nname = "one"\ninput = "a.mp4"\ndetail = 0.0\n'
                            '[[shot]]\nname = "two"\ninput = "a.mp4"\n',
                            "shots 'one' and 'two' have the same output (default output of a)", "its own output"),
    "output over an input": ('[defaults]\nmodel = "m"\n[[shot]]\ninput = "a.mp4"\n'
                             '[[shot]]\ninput = "b.mp4"\noutput = "a.mp4"\n',
                             "shot 'b' writes its output over the input of shot 'a'", "another output path"),
    "same patch folder": ('[defaults]\nmodel = "m"\npatch = "patches"\n[[shot]]\ninput = "a.mp4"\n'
                          '[[shot]]\ninput = "b.mp4"\n', "have the same patch folder", "its own patch"),
    "text for a number": ('[[shot]]\ninput = "a.mp4"\nmodel = "m"\ndetail = "high"\n',
                          "shot 1: detail = 'high' is not a number", "detail = 1.0"),
    "a fraction for a count": ('[defaults]\ncrf = 20.5\n[[shot]]\ninput = "a.mp4"\nmodel = "m"\n',
                               "[defaults]: crf = 20.5 is not a whole number", "crf = 18"),
    "text for a switch": ('[[shot]]\ninput = "a.mp4"\nmodel = "m"\nall_faces = "yes"\n',
                          "all_faces = 'yes' is not true or false", "all_faces = false"),
    "a number for a path": ('[[shot]]\ninput = 7\nmodel = "m"\n', "shot 1: input = 7 is not a path", 'input = "..."'),
    "out of range": ('[[shot]]\ninput = "a.mp4"\nmodel = "m"\ncrf = 60\n', "shot 1: --crf 60 is outside 0..51",
                     "18"),
    "not a choice": ('[[shot]]\ninput = "a.mp4"\nmodel = "m"\nmask = "blob"\n', "--mask 'blob' is not allowed",
                     "occlusion"),
    "bad TOML": ('[[shot]\ninput = "a.mp4"\n', "not valid TOML", "fix the syntax"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_bad_jobs_file_is_refused_naming_the_file_the_shot_and_the_fix(tmp_path, case):
    text, message, fix = REFUSALS[case]
    path = write_jobs(tmp_path, text)
    with pytest.raises(OptionError) as caught:
        load_jobs(path)
    assert caught.value.path == path
    assert message in caught.value.message and fix in caught.value.fix


def test_a_missing_jobs_file_is_an_input_error(tmp_path):
    with pytest.raises(InputNotFoundError, match="no such jobs file"):
        load_jobs(tmp_path / "nope.toml")


# --- running, with api.swap stood in for (the end-to-end test below runs the real one) -------------------------


def fake_swap(tmp_path: Path, fail: dict[str, BaseException], calls: list[str]):
    """api.swap writing a small output per shot; raising `fail[input stem]` for the shots named there."""
    def swap(input, output, *, model, resume, workspace, progress, pool, **options):
        assert resume is True  # chunk-level resume of an interrupted long video
        calls.append(Path(input).stem)
        if Path(input).stem in fail:
            raise fail[Path(input).stem]
        out = Path(output or tmp_path / "outputs" / f"{Path(input).stem}-swapped.mp4")
        out.parent.mkdir(exist_ok=True)
        out.write_bytes(os.urandom(64))  # as a real swap: a new watermark id, new bytes, each time
        return [api.SwapResult(Path(input), out, MediaKind.VIDEO, 10, 10, 1, 1, 0.1, "00", file_digest(out))]
    return swap


@pytest.fixture
def three_shots(tmp_path) -> Path:
    return write_jobs(tmp_path, '[defaults]\nmodel = "m"\n' + "".join(
        f'[[shot]]\ninput = "{name}.mp4"\noutput = "out/{name}.mp4"\n' for name in ("a", "b", "c")))


def test_a_done_shot_is_skipped_unless_its_options_input_or_output_changed(tmp_path, three_shots, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(batch.api, "swap", fake_swap(tmp_path, {}, calls))
    for name in "abc":
        (tmp_path / f"{name}.mp4").write_bytes(b"plate " + name.encode())
    plan = load_jobs(three_shots)
    assert batch.run_batch(plan).exit_code == 0 and calls == ["a", "b", "c"]
    assert batch.done_shots(plan) == {"a", "b", "c"}
    (tmp_path / "out/a.mp4").unlink()  # a missing output
    (tmp_path / "out/b.mp4").write_bytes(b"edited by hand")  # an altered one
    three_shots.write_text(three_shots.read_text() + "crf = 20\n")  # c's options changed
    assert batch.done_shots(load_jobs(three_shots)) == set()
    three_shots.write_text(three_shots.read_text().replace("crf = 20\n", ""))
    calls.clear()
    report = batch.run_batch(load_jobs(three_shots))
    assert calls == ["a", "b"] and [row.outcome for row in report.rows] == ["done", "done", "skipped"]
    os.utime(tmp_path / "c.mp4", ns=(1, 1))  # a re-exported plate
    assert batch.done_shots(load_jobs(three_shots)) == {"a", "b"}


def test_a_full_disk_stops_the_batch_and_ctrl_c_keeps_what_is_done(tmp_path, three_shots, monkeypatch):
    calls: list[str] = []
    full = DiskFullError("the disk is full (0.0 MB free in out)", path=tmp_path / "out/b.mp4", fix="free space")
    monkeypatch.setattr(batch.api, "swap", fake_swap(tmp_path, {"b": full}, calls))
    report = batch.run_batch(load_jobs(three_shots))
    assert calls == ["a", "b"] and [row.outcome for row in report.rows] == ["done", "failed", "not run"]
    assert report.stopped is full and report.exit_code == 2
    assert "the batch stopped: " in batch.format_summary(report)
    calls.clear()
    monkeypatch.setattr(batch.api, "swap", fake_swap(tmp_path, {"b": KeyboardInterrupt()}, calls))
    with pytest.raises(KeyboardInterrupt) as caught:
        batch.run_batch(load_jobs(three_shots))
    assert calls == ["b"]  # a: skipped, done before
    assert [row.outcome for row in caught.value.report.rows] == ["skipped", "not run", "not run"]
    state = json.loads((tmp_path / "jobs.state.json").read_text())["shots"]
    assert state["a"]["status"] == "done" and state["b"]["status"] == "failed"  # b: the disk, from the run before


def test_a_shot_that_fails_in_an_unforeseen_way_is_failed_and_the_others_go_on(tmp_path, three_shots, monkeypatch):
    calls: list[str] = []
    crash = ValueError("Invalid argument returned 22")
    monkeypatch.setattr(batch.api, "swap", fake_swap(tmp_path, {"b": crash}, calls))
    report = batch.run_batch(load_jobs(three_shots))
    assert calls == ["a", "b", "c"] and [row.outcome for row in report.rows] == ["done", "failed", "done"]
    assert report.exit_code != 0 and report.stopped is None
    summary = batch.format_summary(report)
    assert "internal error: ValueError: Invalid argument returned 22" in summary and "--debug" in summary


def test_a_damaged_state_file_is_refused_with_its_fix(tmp_path, three_shots):
    (tmp_path / "jobs.state.json").write_text("{not json")
    with pytest.raises(OptionError, match="state file cannot be read") as caught:
        batch.run_batch(load_jobs(three_shots))
    assert caught.value.path == tmp_path / "jobs.state.json" and "delete it" in caught.value.fix


def test_cli_dry_run_prints_the_plan_and_runs_nothing(tmp_path, three_shots, capsys):
    assert main(["batch", str(three_shots), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"input:   {tmp_path / 'b.mp4'}" in out and f"output:  {tmp_path / 'out/c.mp4'}" in out
    assert not (tmp_path / "jobs.state.json").exists() and not (tmp_path / "out").exists()
    assert main(["batch", str(tmp_path / "nope.toml")]) == 2


# --- end to end ----------------------------------------------------------------------------------------------


def short_clip(source: Path, path: Path, start: int, frames: int = 8) -> Path:
    """`frames` frames of `source` from `start`, as their own clip: a shot the tiny model swaps in seconds."""
    with VideoWriter(path, width=640, height=360, fps=25) as writer:
        for i, frame in enumerate(islice(read_video(source), start, start + frames)):
            writer.write(frame.image, i)
    return path


@pytest.mark.slow
def test_batch_goes_on_past_a_corrupt_shot_and_a_rerun_retries_only_it(model_ws, sample, tmp_path, capsys):
    plates = tmp_path / "plates"
    plates.mkdir()
    ben = sample("single_face.mp4")
    short_clip(ben, plates / "sh010.mp4", 0)
    short_clip(ben, plates / "sh030.mp4", 30)
    (plates / "sh020.mp4").write_bytes(os.urandom(20_000))  # random bytes named .mp4
    jobs = write_jobs(tmp_path, f'''
workspace = "{model_ws}"
[defaults]
model = "{MODEL}"
workers = 1
[[shot]]
input = "plates/sh010.mp4"
output = "out/sh010.mp4"
[[shot]]
input = "plates/sh020.mp4"
output = "out/sh020.mp4"
[[shot]]
input = "plates/sh030.mp4"
output = "out/sh030.mp4"
detail = 0.5
''')
    assert main(["batch", str(jobs)]) == 2  # as `swap FOLDER` with a bad file
    out = capsys.readouterr().out
    assert "sh010 done" in out and "sh030 done" in out and "sh020 FAILED: " in out
    summary = out[out.index("batch jobs.toml: 3 shot(s): 2 done, 0 skipped, 1 failed"):]
    assert "sh020  FAILED" in summary and str(plates / "sh020.mp4") in summary and "fix: " in summary
    good = [tmp_path / "out/sh010.mp4", tmp_path / "out/sh030.mp4"]
    assert [report.outcome for report in api.verify(good, workspace=model_ws)] == ["verified", "verified"]
    assert not (tmp_path / "out/sh020.mp4").exists()
    state = json.loads((tmp_path / "jobs.state.json").read_text())["shots"]
    assert {name: entry["status"] for name, entry in state.items()} == {
        "sh010": "done", "sh020": "failed", "sh030": "done"}
    assert state["sh010"]["outputs"] == [{"path": str(good[0]), "sha256": file_digest(good[0])}]
    assert state["sh020"]["error"] and state["sh020"]["fix"]

    before = [(p.stat().st_mtime_ns, file_digest(p)) for p in good]
    short_clip(ben, plates / "sh020.mp4", 50)  # the plate re-exported: the re-run retries it, and only it
    assert main(["batch", str(jobs)]) == 0
    out = capsys.readouterr().out
    assert "sh010 skipped" in out and "sh030 skipped" in out and "sh020 done" in out
    assert "3 shot(s): 1 done, 2 skipped, 0 failed" in out
    assert [(p.stat().st_mtime_ns, file_digest(p)) for p in good] == before  # not swapped again
    assert api.verify([tmp_path / "out/sh020.mp4"], workspace=model_ws)[0].outcome == "verified"
    assert Outcome.DONE == json.loads((tmp_path / "jobs.state.json").read_text())["shots"]["sh020"]["status"]
