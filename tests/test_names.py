"""Names that become folders (identities, facesets, models): one rule, refused with exit 2 wherever a name
enters, and checked again where a path is built from one, so nothing is ever written outside the workspace."""
from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from facewright import api
from facewright.cli import main
from facewright.collect.catalog import find_faceset
from facewright.collect.store import FacesetStore
from facewright.config import ExtractOptions, TrainOptions
from facewright.errors import InputError, OptionError
from facewright.names import MAX_NAME_CHARS, check_name
from facewright.provenance.consent import utc_today
from facewright.swap.model import resolve_checkpoint
from facewright.train.run import model_folder
from facewright.workspace import Workspace

BAD = ["../../x", "/abs", "..", ".", "a/b", "a\\b", "x" * 300, "", "a\x00b", "a\nb", ".hidden", "-flag", "two words"]
GOOD = ["Zoë", "李雷", "anna-2_b.v1", "अनिल", "x" * MAX_NAME_CHARS]
RULE = "fix: a name is 1 to 64 letters (any script), digits, '-', '_' and '.', not starting with '.' or '-'"


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _consent_add(identity: str, photo: Path, root: Path) -> list[str]:
    return ["consent", "add", f"--identity={identity}", "--photo", str(photo), "--role", "both", "--purpose",
            "testing the rule for names", "--channels", "tests", "--expires",
            (utc_today() + timedelta(days=10)).isoformat(), "--workspace", str(root)]


@pytest.mark.parametrize("name", BAD, ids=repr)
@pytest.mark.parametrize("command", ["extract", "consent add", "train --src", "train --name", "consent list"])
def test_a_bad_name_is_exit_2_with_the_rule_and_writes_nothing(command, name, sample, tmp_path, capsys):
    root = tmp_path / "nest" / "ws"  # '../../x' from here would land in tmp_path
    photo = sample("single_face.jpg")
    argv = {"extract": ["extract", str(photo), f"--identity={name}", "--workspace", str(root)],
            "consent add": _consent_add(name, photo, root),
            "train --src": ["train", f"--src={name}", "--dst", "ben", "--workspace", str(root)],
            "train --name": ["train", "--src", "anna", "--dst", "ben", f"--name={name}", "--workspace", str(root)],
            "consent list": ["consent", "list", f"--identity={name}", "--workspace", str(root)]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is not a usable name" in err and RULE in err
    assert _files(tmp_path) == set()  # no workspace made, and nothing beside or above it


@pytest.mark.parametrize("name", GOOD)
def test_names_of_any_script_pass(name):
    assert check_name(name, "--identity") == name


def test_the_message_says_which_rule_and_shows_a_long_name_shortened():
    with pytest.raises(OptionError) as caught:
        check_name("x" * 300, "--identity")
    assert "it has 300 characters, more than 64" in str(caught.value) and "x" * 41 not in str(caught.value)
    for name, reason in (("../x", "'/', a path separator"), ("a\\b", "path separator"), ("..", "a folder's own"),
                         (".x", "starts with '.'"), ("-x", "starts with '-'"), ("a\x00", "U+0000"), ("a b", "space")):
        with pytest.raises(OptionError, match=re.escape(reason)):
            check_name(name, "--identity")


def test_good_names_are_recorded_and_listed_through_the_cli(sample, tmp_path, capsys):
    root = tmp_path / "ws"
    for name in GOOD[:3]:
        assert main(_consent_add(name, sample("single_face.jpg"), root)) == 0
    capsys.readouterr()
    assert main(["consent", "list", "--identity", "Zoë", "--workspace", str(root)]) == 0
    assert " Zoë " in capsys.readouterr().out
    with Workspace.open(root) as ws:
        store = FacesetStore(ws, "李雷", ExtractOptions())
        store.ensure()
        assert (root / "facesets" / "李雷" / "faces").is_dir()


def test_a_bad_name_in_an_older_catalog_never_becomes_a_path(tmp_path):
    with Workspace.init(tmp_path / "ws") as ws:
        ws.conn.execute("INSERT INTO facesets (name, identity_id, face_type, size, created_at) VALUES "
                        "('../../evil', ?, 'whole_face', 256, 'then')", (ws.identity_id("../../evil"),))
        with pytest.raises(OptionError, match="faceset name '../../evil' is not a usable name"):
            find_faceset(ws, "../../evil")
        with pytest.raises(OptionError, match="not a usable name"):
            FacesetStore(ws, "../../evil", ExtractOptions())
        with pytest.raises(OptionError, match="not a usable name"):
            api.show_faceset("../../evil", workspace=ws.root)
        options = TrainOptions(model="test-ae", resolution=64)
        with pytest.raises(OptionError, match="--name '../x'"):
            model_folder(ws, "anna", "ben", options, "../x")
        with pytest.raises(OptionError, match="--src '../a'"):
            model_folder(ws, "../a", "ben", options, None)
    assert sorted(os.listdir(tmp_path)) == ["ws"]


def test_swap_model_is_a_path_when_it_exists_and_else_a_name(tmp_path, monkeypatch):
    with Workspace.init(tmp_path / "ws") as ws:
        folder = tmp_path / "elsewhere" / "my model"  # a folder given by path may be called anything
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "checkpoints" / "step_0000003.pt").write_bytes(b"checkpoint")
        assert resolve_checkpoint(ws, folder) == folder / "checkpoints" / "step_0000003.pt"
        monkeypatch.chdir(tmp_path / "elsewhere")
        assert resolve_checkpoint(ws, "my model").name == "step_0000003.pt"  # relative, existing: a path
        with pytest.raises(OptionError, match="--model '../../x' is not a usable name") as caught:
            resolve_checkpoint(ws, "../../x")
        assert "a model folder or checkpoint file that exists" in caught.value.fix
        with pytest.raises(InputError, match="no model named 'nope'"):
            resolve_checkpoint(ws, "nope")


def test_every_entry_of_a_name_checks_it(sample, tmp_path):
    photo = sample("single_face.jpg")
    with pytest.raises(OptionError, match="--target '../x'"):
        api.swap(photo, tmp_path / "out.png", model="m", target="../x", workspace=tmp_path / "ws")
    with pytest.raises(OptionError, match="--source '../a.png' is not a usable name") as caught:
        api.score(photo, source="../a.png", target_video=photo, workspace=tmp_path / "ws")
    assert "or the path of an existing photo or video of A" in caught.value.fix
    for call in (api.show_faceset, api.prune_faceset):
        with pytest.raises(OptionError, match="faceset name '..'"):
            call("..", workspace=tmp_path / "ws")
    with pytest.raises(OptionError, match="--dst"):
        api.train("anna", "b/c", workspace=tmp_path / "ws")
    assert _files(tmp_path) == set()


def test_an_output_named_after_an_input_carries_no_control_characters(tmp_path):
    from facewright.names import printable
    from facewright.swap.run import _output_path

    assert printable("take 1;$(x)\nrm -rf\x1b[2J") == "take 1;$(x)_rm -rf_[2J"  # spaces and punctuation stay
    assert printable("Zoë 李雷") == "Zoë 李雷"

    class Ws:
        root = tmp_path

    assert _output_path(Ws(), tmp_path / "odd\nname.mp4", None).name == "odd_name-swapped.mp4"
