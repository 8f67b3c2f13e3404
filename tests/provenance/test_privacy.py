"""Personal data stays private: a manifest names no person, file or host unless names are chosen; consent
photos, face crops, face tracks and the catalog are readable by their owner only."""
from __future__ import annotations

import getpass
import json
import socket
import sqlite3
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from facewright import api
from facewright.cli import main
from facewright.errors import OptionError
from facewright.media import read_video, write_image
from facewright.provenance.consent import utc_today
from facewright.provenance.keys import KEYS_ENV, load_identity
from facewright.provenance.label import Label
from facewright.provenance.mark import MarkPlan
from facewright.workspace import MIGRATIONS, Migration, Workspace

PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700
PERSONAL = "jane_doe_bedroom_private"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _consent(root: Path, identity: str, photo: Path):
    return api.consent_add(identity, photo=photo, role="both", purpose="testing that personal data stays private",
                           channels=["tests"], expires=(utc_today() + timedelta(days=10)).isoformat(), workspace=root)


@pytest.fixture(scope="module")
def marked(sample, tmp_path_factory):
    """A workspace with a consent, and the astronaut photo marked twice (with --model): by default, and with
    --name-in-manifest; both outputs have a personal file name."""
    root = tmp_path_factory.mktemp("privacy") / "ws"
    record = _consent(root, "eileen", sample("astronaut.png"))
    out = tmp_path_factory.mktemp("out")
    common = ["mark", str(sample("astronaut.png")), "--consent", record.id[:8], "--model", "alice-to-bob-liae-ud-256",
              "--workspace", str(root)]
    assert main([*common[:2], str(out / f"{PERSONAL}-swapped.png"), *common[2:]]) == 0
    assert main([*common[:2], str(out / f"{PERSONAL}-named.png"), *common[2:], "--name-in-manifest"]) == 0
    reports = api.verify([out / f"{PERSONAL}-swapped.png", out / f"{PERSONAL}-named.png"], workspace=root)
    return root, reports


def _title(report) -> str:
    store = json.loads(report.c2pa.manifest_json)
    return store["manifests"][store["active_manifest"]]["title"]


def test_by_default_the_manifest_names_no_file_person_model_or_host(marked):
    root, (default, _) = marked
    assert default.outcome == "verified"
    assert _title(default) == "facewright output (image)"
    manifest = default.c2pa.manifest_json
    for personal in (PERSONAL, "alice", "bob", "eileen", f"{getpass.getuser()}@{socket.gethostname()}"):
        assert personal not in manifest, personal
    assert default.c2pa.facewright["name_in_manifest"] is False
    assert default.c2pa.facewright["model"] == {"name": None, "sha256": None}  # mark knows no model hash
    assert default.record["model"] == "alice-to-bob-liae-ud-256"  # the private catalog keeps the name


def test_names_go_into_the_manifest_only_when_chosen_and_the_choice_is_recorded(marked):
    _, (_, named) = marked
    assert named.outcome == "verified"
    assert _title(named) == f"{PERSONAL}-named.png"
    assert named.c2pa.facewright["name_in_manifest"] is True
    assert named.c2pa.facewright["model"]["name"] == "alice-to-bob-liae-ud-256"


def test_a_model_is_named_by_its_hash_unless_names_are_chosen():
    plan = MarkPlan(Label("ai-generated"), model="alice-to-bob-liae-ud-256", model_sha256="ab12" * 16)
    assert plan.assertion()["model"] == {"name": "sha256:ab12ab12ab12ab12", "sha256": "ab12" * 16}
    assert plan.model_label == "sha256:ab12ab12ab12ab12"
    named = MarkPlan(Label("ai-generated"), model="alice-to-bob-liae-ud-256", model_sha256="ab12" * 16, names=True)
    assert named.assertion()["model"]["name"] == "alice-to-bob-liae-ud-256"


def _common_name(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_the_signer_shows_a_chosen_display_name_or_a_generic_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(KEYS_ENV, str(tmp_path / "default"))
    identity = load_identity()
    assert _common_name(identity.chain_pem) == "facewright local signer"
    assert getpass.getuser() not in identity.subject and socket.gethostname() not in identity.subject

    monkeypatch.setenv(KEYS_ENV, str(tmp_path / "studio"))
    assert main(["keys", "show", "--name", "Studio X"]) == 0
    assert "CN=Studio X" in capsys.readouterr().out
    assert _common_name(api.keys_show(name="Studio X").chain_pem) == "Studio X"  # the same name again: fine
    with pytest.raises(OptionError, match="already exists and signs as 'Studio X'") as caught:
        api.keys_show(name="Studio Y")  # existing keys are kept as they are
    assert "move" in caught.value.fix and caught.value.exit_code == 2

    monkeypatch.setenv("FACEWRIGHT_SIGNER_NAME", "Env Studio")
    assert _common_name(api.keys_show().chain_pem) == "Studio X"  # the setting applies to keys made from now on
    monkeypatch.setenv(KEYS_ENV, str(tmp_path / "env"))
    assert _common_name(api.keys_show().chain_pem) == "Env Studio"
    monkeypatch.setenv(KEYS_ENV, str(tmp_path / "bad"))
    with pytest.raises(OptionError, match="1 to 64 printable characters"):
        api.keys_show(name="x" * 65)


def test_consent_photos_records_and_the_catalog_are_the_owners_only(marked):
    root, _ = marked
    assert mode(root) == PRIVATE_DIR  # made by facewright: the owner's alone
    [record] = api.consent_list(workspace=root)
    folder = root / "consents" / record.id
    assert mode(root / "consents") == mode(folder) == PRIVATE_DIR
    assert {p.name: mode(p) for p in folder.iterdir()} == {"photo.png": PRIVATE_FILE, "record.json": PRIVATE_FILE}
    catalog = root / "catalog.sqlite"
    with Workspace.open(root):  # open: the -wal and -shm files are there now
        for path in (catalog, catalog.with_name("catalog.sqlite-wal"), catalog.with_name("catalog.sqlite-shm")):
            assert mode(path) == PRIVATE_FILE, path


def test_an_older_catalog_is_made_private_and_its_backups_are_private(tmp_path):
    with Workspace.init(tmp_path / "ws") as ws:
        catalog = ws.catalog
    catalog.chmod(0o644)  # as older versions left it
    extra = Migration(MIGRATIONS[-1].version + 1, "notes", ("CREATE TABLE notes (id INTEGER PRIMARY KEY)",))
    with Workspace.open(tmp_path / "ws", (*MIGRATIONS, extra)):
        pass
    assert mode(catalog) == PRIVATE_FILE
    [backup] = catalog.parent.glob("catalog.sqlite.bak-v*")
    assert mode(backup) == PRIVATE_FILE
    with sqlite3.connect(backup) as copy:  # a real copy, not the empty file made first
        assert copy.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == MIGRATIONS[-1].version


def test_face_crops_masks_sheets_and_tracks_are_the_owners_only(sample, tmp_path):
    root = tmp_path / "ws"
    photo = write_image(next(read_video(sample("single_face.mp4"))).image, tmp_path / "man.png")
    _consent(root, "man", photo)
    api.extract([sample("single_face.mp4")], "man", workspace=root, every=24, for_swap=True, size=64)
    report = api.show_faceset("man", workspace=root)
    folder = root / "facesets" / "man"
    assert mode(root / "facesets") == mode(folder) == mode(folder / "faces") == mode(folder / "masks") == PRIVATE_DIR
    files = [*folder.glob("faces/*"), *folder.glob("masks/*"), report.sheet, report.poses]
    assert len(files) > 4 and {mode(p) for p in files} == {PRIVATE_FILE}
    tracks = list((root / "tracks").glob("*/*.npz"))
    assert tracks and {mode(p) for p in tracks} == {PRIVATE_FILE}
    assert {mode(p) for p in (root / "tracks").rglob("*") if p.is_dir()} | {mode(root / "tracks")} == {PRIVATE_DIR}
