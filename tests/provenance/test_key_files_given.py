"""Certificate and key files the user gives (`verify --anchor`, `keys trust`, `keys import`, `keys export-anchor`'s
output): a bad one is bad input, exit 2, naming the file and a fix about that file, never "delete the keys folder"
(that would throw away the user's signing identity for a file of theirs); an existing output is not overwritten."""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from facewright import api
from facewright.cli import main
from facewright.errors import InputError, OutputError, ProvenanceError
from facewright.provenance.ca import pem
from facewright.provenance.keys import (
    KEYS_ENV,
    export_anchor,
    import_identity,
    load_identity,
    trust_anchor,
)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4  # binary, not ASCII: what --anchor face.jpg reads


@pytest.fixture
def keys_env(tmp_path, monkeypatch) -> Path:
    """A fresh, not yet existing keys folder named by $FACEWRIGHT_KEYS."""
    folder = tmp_path / "keys"
    monkeypatch.setenv(KEYS_ENV, str(folder))
    return folder


@pytest.fixture
def bad_files(tmp_path) -> dict[str, Path]:
    """A binary file, a text file with no certificate, and a leaf certificate (no CA), as a user might give them."""
    (tmp_path / "face.jpg").write_bytes(JPEG)
    (tmp_path / "garbage.pem").write_text("garbage\n")
    leaf = load_identity(tmp_path / "other").chain_pem
    (tmp_path / "leaf.pem").write_bytes(pem(x509.load_pem_x509_certificates(leaf)[0]))
    return {"binary": tmp_path / "face.jpg", "garbage": tmp_path / "garbage.pem", "leaf": tmp_path / "leaf.pem"}


def assert_about_the_file(error: InputError, path: Path) -> None:
    assert error.path == path and error.exit_code == 2
    assert "delete the keys folder" not in error.fix


# --- verify --anchor -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["binary", "garbage", "leaf"])
def test_verify_refuses_an_anchor_that_is_no_ca_certificate(bad_files, tmp_path, kind):
    target = tmp_path / "some.png"
    target.write_bytes(b"not read: the anchors are checked first")
    with pytest.raises(InputError) as caught:
        api.verify([target], anchors=[bad_files[kind]], workspace=tmp_path / "none")
    assert_about_the_file(caught.value, bad_files[kind])
    assert "export-anchor" in caught.value.fix


@pytest.mark.parametrize("kind", ["binary", "garbage"])
def test_verify_with_a_bad_anchor_exits_2_naming_it(bad_files, tmp_path, capsys, kind):
    target = tmp_path / "some.png"
    target.write_bytes(b"x")
    code = main(["verify", str(target), "--anchor", str(bad_files[kind]), "--workspace", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(bad_files[kind]) in err and "internal error" not in err and "Traceback" not in err


def test_verify_takes_an_exported_root_as_anchor(tmp_path):
    load_identity()
    root = export_anchor(tmp_path / "root.pem")
    target = tmp_path / "some.txt"
    target.write_text("not media")
    reports = api.verify([target], anchors=[root], workspace=tmp_path / "none")
    assert len(reports) == 1  # a report (or that file's own error): the anchor was taken


# --- keys trust, keys import -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["binary", "garbage", "leaf"])
def test_keys_trust_refuses_a_bad_file_as_input(bad_files, keys_env, kind):
    with pytest.raises(InputError) as caught:
        trust_anchor(bad_files[kind])
    assert_about_the_file(caught.value, bad_files[kind])
    assert not keys_env.exists()  # nothing made for a refused file


def test_keys_trust_and_import_of_a_bad_file_exit_2(bad_files, keys_env, capsys):
    garbage = str(bad_files["garbage"])
    assert main(["keys", "trust", garbage]) == 2
    assert main(["keys", "trust", str(bad_files["binary"])]) == 2
    assert main(["keys", "import", "--chain", garbage, "--key", garbage]) == 2
    err = capsys.readouterr().err
    assert "delete the keys folder" not in err and "internal error" not in err


def test_keys_import_refuses_a_bad_chain_or_key_naming_it(bad_files, tmp_path, keys_env):
    source = load_identity(tmp_path / "org")
    with pytest.raises(InputError, match="PEM certificate") as caught:
        import_identity(bad_files["garbage"], source.folder / "signer.key")
    assert_about_the_file(caught.value, bad_files["garbage"])
    with pytest.raises(InputError, match="private key") as caught:
        import_identity(source.folder / "signer.pem", bad_files["binary"])
    assert_about_the_file(caught.value, bad_files["binary"])
    with pytest.raises(InputError) as caught:
        import_identity(source.folder / "signer.pem", source.folder / "signer.key", anchor=bad_files["garbage"])
    assert_about_the_file(caught.value, bad_files["garbage"])
    assert not keys_env.exists()


def test_a_damaged_file_of_the_keys_folder_keeps_the_fresh_identity_advice(keys_env):
    load_identity()
    (keys_env / "signer.pem").write_text("garbage\n")
    with pytest.raises(ProvenanceError) as caught:
        load_identity()
    assert caught.value.path == keys_env / "signer.pem" and "delete the keys folder" in caught.value.fix


# --- keys export-anchor ------------------------------------------------------------------------------------------


def test_export_anchor_to_a_folder_is_an_output_error(tmp_path, capsys):
    load_identity()
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(OutputError, match="existing folder") as caught:
        export_anchor(folder)
    assert caught.value.path == folder and list(folder.iterdir()) == []
    assert main(["keys", "export-anchor", str(folder)]) == 2
    assert "internal error" not in capsys.readouterr().err


def test_export_anchor_never_overwrites_a_file_that_is_no_certificate(tmp_path, capsys):
    load_identity()
    photo = tmp_path / "photo.png"
    photo.write_bytes(JPEG)
    with pytest.raises(OutputError, match="not a PEM certificate") as caught:
        export_anchor(photo)
    assert caught.value.path == photo and "remove the file" in caught.value.fix
    assert main(["keys", "export-anchor", str(photo)]) == 2
    assert photo.read_bytes() == JPEG


def test_export_anchor_replaces_an_earlier_export(tmp_path):
    earlier = tmp_path / "root.pem"
    earlier.write_bytes(load_identity(tmp_path / "old").anchor_pem)  # the root of keys made before these
    written = export_anchor(earlier)
    assert written.read_bytes() == load_identity().anchor_pem


def test_export_anchor_with_no_identity_yet_says_how_to_make_one(keys_env, tmp_path, capsys):
    with pytest.raises(InputError, match="no signing identity") as caught:
        export_anchor(tmp_path / "root.pem")
    assert caught.value.path == keys_env and "facewright keys show" in caught.value.fix
    assert not keys_env.exists() and not (tmp_path / "root.pem").exists()  # exporting makes no keys
    assert main(["keys", "export-anchor", str(tmp_path / "root.pem")]) == 2
