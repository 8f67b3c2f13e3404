"""The render folder of `swap --render-only DIR`: every chosen face as the model rendered it, for `composite`.

Rendering needs the model (a GPU node); everything after it (color, occlusion, detail, blend, label,
watermark, encode, audio, signing) needs only the input's pixels and what is stored here, so another
process or machine composites (swap.composite). The folder holds, per chosen track NNN:

- `track_NNN_faces.mp4`: the model's faces before color transfer, S x S (the model's crop), one frame per
  frame of the input where the track is swapped, with the input's timestamps; x264 crf 0 yuv444p (RGB ->
  YUV -> RGB costs at most one level, two on noise; measured, see tests/swap/test_composite.py). They are
  swapped faces, so the file is watermarked and signed (C2PA) and recorded in the catalog. It carries no
  visible label: a label drawn onto a face would be pasted into every final frame. Its manifest says it is
  an intermediate ("intermediate" fact) and has label "none", so the choice is recorded, not silent; the
  composited output gets the label, watermark and signature asked for then. Its watermark's id is in
  `track_NNN.json`: `composite` takes that pattern off again (it is additive) before compositing, so the
  final frame carries one watermark, the output's own.
- `track_NNN_masks.mp4`: the model's predicted masks as gray video, x264 crf 0 yuv444p (within one level).
- `track_NNN.npz`: `frames` (input frame indices), `pts`, `matrices` (N x 2 x 3 float64, frame pixels ->
  crop pixels), `points` (N x 68 x 2 float32, the smoothed landmarks the hull mask, occlusion and detail
  transfer use), and the track's fitted color map (`color/...` arrays, see `color_arrays`).
- `track_NNN.json`: the track's file hashes, frame count, size and watermark id; written when the track is
  complete, so a render run again into the folder skips it (`done`).

`patch.json`, written last and atomically, names the input (sha256), the model (name, sha256, face type,
resolution), the consent ids the render was checked under, the options that shaped the render, the tracks
in compositing order and the sha256 of every file. A folder without it is an unfinished render. It is
signed (its "seal": the signature over the rest and the signer's certificate chain, provenance.signed), so
no part of it, the geometry's hashes included, can be changed unseen: composite refuses a manifest whose
signature does not verify or whose signer this machine does not trust.

`--patch DIR` (swap.patch) is a different thing: color-matched, blended-mask faces as finished material for an
editor, written beside a swapped video. An artist may also edit the files here (a face fixed in a compositing
tool, re-encoded with the same frame count and size): composite uses the edit and records it in the output's
manifest.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from facewright.config import VideoOptions
from facewright.errors import PatchError
from facewright.files import atomic_path, sha256_file, temp_folder
from facewright.media.kind import MediaKind
from facewright.media.video import VideoFrame, probe, read_video
from facewright.media.writer import VideoWriter
from facewright.provenance import signed, watermark
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.mark import FrameMarker, MarkPlan, MarkResult, seal
from facewright.provenance.trust import Trust
from facewright.swap import color as _color
from facewright.swap.compose import FaceJob, Rendered

FORMAT = "facewright-render-v2"  # v2: patch.json is signed
MANIFEST = "patch.json"
SEAL = "seal"  # patch.json's signature over the rest of it
LOSSLESS = VideoOptions(crf=0, preset="veryfast")
LOSSLESS_PIX_FMT = "yuv444p"  # full chroma: faces keep their color edges (yuv420p would halve them)
INTERMEDIATE = ("intermediate", "render-only faces for facewright composite, unlabelled so that no label is pasted "
                "into the final frames; the composited output carries the label")
_COLOR_MAPS = {cls.__name__: cls for cls in (_color.IdentityMap, _color.LabMap, _color.AffineMap, _color.SlicedMap,
                                             _color.CubeMap, _color.Slice)}


def track_files(track: int) -> dict[str, str]:
    """The names of a track's files by role."""
    return {"faces": f"track_{track:03d}_faces.mp4", "masks": f"track_{track:03d}_masks.mp4",
            "geometry": f"track_{track:03d}.npz"}


def track_record(track: int) -> str:
    return f"track_{track:03d}.json"


# --- color maps as plain arrays (no pickle: a render folder may come from another machine) --------------------


def color_arrays(fitted: object, prefix: str = "color/") -> dict[str, np.ndarray]:
    """A fitted color map (swap.color) as named arrays, `prefix + "kind"` naming its class."""
    out = {prefix + "kind": np.array(type(fitted).__name__)}
    for field in dataclasses.fields(fitted):
        value = getattr(fitted, field.name)
        if isinstance(value, tuple):
            out[f"{prefix}{field.name}/count"] = np.array(len(value))
            for k, item in enumerate(value):
                out.update(color_arrays(item, f"{prefix}{field.name}/{k}/"))
        elif dataclasses.is_dataclass(value):
            out.update(color_arrays(value, f"{prefix}{field.name}/"))
        else:
            out[prefix + field.name] = np.asarray(value)
    return out


def color_from_arrays(arrays: Mapping[str, np.ndarray], prefix: str = "color/") -> object | None:
    """The color map `color_arrays` stored under `prefix`; None if there is none."""
    if prefix + "kind" not in arrays:
        return None
    cls = _COLOR_MAPS[str(arrays[prefix + "kind"])]
    values = {}
    for field in dataclasses.fields(cls):
        key = prefix + field.name
        if key + "/count" in arrays:
            values[field.name] = tuple(color_from_arrays(arrays, f"{key}/{k}/")
                                       for k in range(int(arrays[key + "/count"])))
        elif key + "/kind" in arrays:
            values[field.name] = color_from_arrays(arrays, key + "/")
        else:
            value = arrays[key]
            values[field.name] = value.item() if value.ndim == 0 else value
    return cls(**values)


# --- writing --------------------------------------------------------------------------------------------------


def unmark(face: np.ndarray, payload: int) -> np.ndarray:
    """An S x S x 3 uint8 face with the watermark of `payload` taken off again (the pattern is additive and
    depends only on the payload and the size; exact but where marking clipped at 0 or 255)."""
    grey = np.full(face.shape, 128, np.uint8)
    delta = watermark.embed(grey, payload).astype(np.int16) - 128
    return np.clip(face.astype(np.int16) - delta, 0, 255).astype(np.uint8)


@dataclasses.dataclass
class _Track:
    faces: VideoWriter
    masks: VideoWriter
    marker: FrameMarker
    frames: list[int] = dataclasses.field(default_factory=list)
    pts: list[int] = dataclasses.field(default_factory=list)
    matrices: list[np.ndarray] = dataclasses.field(default_factory=list)
    points: list[np.ndarray] = dataclasses.field(default_factory=list)


class RenderWriter:
    """Writes the render folder: each track's files as soon as the pass is past its last frame, then
    `patch.json`. `facts` is the manifest's common part; `plan` makes each track's MarkPlan; `record` is
    called with each sealed faces file (catalog rows)."""

    def __init__(self, folder: Path, facts: dict, fps: Fraction | float, time_base: Fraction | None,
                 plan: Callable[[], MarkPlan], signer: SigningIdentity,
                 record: Callable[[MarkResult, MarkPlan], None]):
        self.folder, self.facts, self.fps, self.time_base = folder, facts, fps, time_base
        self.plan, self.signer, self.record = plan, signer, record
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)  # a render under way is unfinished until it writes its own
        self._tmp = temp_folder(folder, "render")
        self._open: dict[int, _Track] = {}
        self._colors: dict[int, object] = {}
        self.reused: set[int] = set()

    def done(self, track: int) -> bool:
        """Whether an earlier render of the same input, model and options completed `track` here (its
        record matches these facts and every file its hash): it is kept, not rendered again."""
        path = self.folder / track_record(track)
        if not path.is_file():
            return False
        try:
            record = json.loads(path.read_bytes())
        except (OSError, ValueError):  # damaged: the track is rendered again, and its record written anew
            return False
        files = record.get("sha256") if isinstance(record, dict) else None
        complete = (isinstance(files, dict) and record.get("render") == _identity(self.facts)
                    and set(files) == set(track_files(track).values())
                    and all((self.folder / name).is_file() and sha256_file(self.folder / name) == sha
                            for name, sha in files.items()))
        if complete:
            self.reused.add(track)
        return complete

    def colors(self, colors: Mapping[int, object]) -> None:
        self._colors.update(colors)

    def add(self, frames: Sequence[VideoFrame], jobs: Sequence[FaceJob], rendered: Rendered) -> None:
        """The rendered faces of `jobs` (frame position in `frames`, track, points)."""
        for (i, track, points), matrix, face, mask in zip(jobs, rendered.matrices, rendered.faces, rendered.masks,
                                                          strict=True):
            entry = self._open.get(track) or self._start(track, face.shape[0])
            entry.faces.write(entry.marker(_u8(face)), frames[i].pts)
            entry.masks.write(np.repeat(_u8(mask)[..., None], 3, axis=2), frames[i].pts)
            entry.frames.append(frames[i].index)
            entry.pts.append(frames[i].pts)
            entry.matrices.append(np.asarray(matrix, np.float64))
            entry.points.append(np.asarray(points, np.float32))

    def _start(self, track: int, size: int) -> _Track:
        names = track_files(track)
        writers = []
        for role in ("faces", "masks"):
            writer = VideoWriter(Path(self._tmp.name) / names[role], width=size, height=size, fps=self.fps,
                                 time_base=self.time_base, options=LOSSLESS)
            writer.stream.pix_fmt = LOSSLESS_PIX_FMT  # set before the first frame opens the encoder
            writers.append(writer)
        entry = self._open[track] = _Track(*writers, FrameMarker(self.plan(), MediaKind.VIDEO))
        return entry

    def end(self, track: int) -> None:
        """Finish `track`: seal its faces, move its files in, write its record (it is complete from then)."""
        entry = self._open.pop(track, None)
        if entry is None:
            return
        names = track_files(track)
        faces = seal(entry.faces.close(), self.folder / names["faces"], entry.marker.plan, self.signer)
        shutil.move(entry.masks.close(), self.folder / names["masks"])
        with atomic_path(self.folder / names["geometry"]) as tmp:
            with open(tmp, "wb") as out:
                np.savez(out, frames=np.array(entry.frames, np.int64), pts=np.array(entry.pts, np.int64),
                         matrices=np.stack(entry.matrices), points=np.stack(entry.points),
                         **(color_arrays(self._colors[track]) if track in self._colors else {}))
        size = entry.faces.width
        record = {"track": track, "render": _identity(self.facts), "frames": len(entry.frames), "size": size,
                  "payload": entry.marker.plan.payload_hex,
                  "sha256": {name: sha256_file(self.folder / name) for name in names.values()}}
        # recorded before the record that makes the track complete: a crash between the two leaves a track
        # that is rendered again, never a complete one the catalog does not know (composite looks it up)
        self.record(MarkResult.of(faces, entry.marker.plan, MediaKind.VIDEO, len(entry.frames), entry.marker),
                    entry.marker.plan)
        with atomic_path(self.folder / track_record(track)) as tmp:
            tmp.write_text(json.dumps(record, indent=1) + "\n")

    def finish(self, tracks: Sequence[int]) -> Path:
        """End every open track and write `patch.json` naming `tracks` (compositing order)."""
        for track in list(self._open):
            self.end(track)
        records = [json.loads((self.folder / track_record(t)).read_text()) for t in tracks]
        manifest = {**self.facts, "tracks": records}
        manifest[SEAL] = signed.seal(manifest, self.signer)
        with atomic_path(self.folder / MANIFEST) as tmp:
            tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        self.close()
        return self.folder / MANIFEST

    def close(self) -> None:
        """Drop whatever track is unfinished; finished tracks stay (a later render skips them)."""
        for entry in self._open.values():
            entry.faces.abort()
            entry.masks.abort()
        self._open.clear()
        self._tmp.cleanup()


def _identity(facts: Mapping) -> dict:
    """What a track's files depend on: the same input, model and render options make the same faces."""
    return {"input": facts["input"]["sha256"], "model": facts["model"]["sha256"], "options": facts["render"]}


def _u8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(image, np.float32) * 255), 0, 255).astype(np.uint8)


# --- reading --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StoredTrack:
    """One track of a render folder, checked: its geometry, color map, and which files were edited."""

    id: int
    folder: Path
    frames: np.ndarray  # N input frame indices
    matrices: np.ndarray  # N x 2 x 3
    points: np.ndarray  # N x 68 x 2
    size: int
    payload: int  # the faces file's watermark id
    color: object | None
    edited: tuple[str, ...]  # roles whose file differs from the render's ("faces", "masks", "geometry")

    def faces(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(face S x S x 3 float32 RGB in [0, 1] before color, mask S x S float32) per frame, in order."""
        names = track_files(self.id)
        faces = read_video(self.folder / names["faces"])
        masks = read_video(self.folder / names["masks"])
        for face, mask in zip(faces, masks, strict=True):
            yield (unmark(face.image, self.payload).astype(np.float32) / 255,
                   mask.image[..., 0].astype(np.float32) / 255)


def read_render(folder: Path, input: Path, input_sha256: str, trust: Trust) -> tuple[dict, list[StoredTrack]]:
    """The manifest and tracks of a render folder made from `input`; PatchError when it is unfinished, of
    another input, its manifest is not signed by a signer `trust` trusts or was changed after signing, or a
    track file does not hold the frames it should."""
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        raise PatchError("no such render folder", path=folder,
                         fix="give the folder that `facewright swap INPUT --model M --render-only DIR` wrote")
    if not manifest_path.is_file():
        raise PatchError(f"the render is unfinished: {MANIFEST} is missing (it is written last)", path=folder,
                         fix="run the same `facewright swap INPUT --model M --render-only DIR` again; it keeps the "
                             "tracks that were complete")
    manifest = _read_manifest(manifest_path)
    if manifest.get("format") != FORMAT:
        raise PatchError(f"not a {FORMAT} render folder", path=manifest_path, fix="render it again with this version")
    _check_signed(manifest, manifest_path, trust)
    if manifest["input"]["sha256"] != input_sha256:
        raise PatchError(f"the render was made from another input ({manifest['input']['name']}, sha256 "
                         f"{manifest['input']['sha256'][:16]}), not from {input.name} (sha256 {input_sha256[:16]})",
                         path=folder, fix=f"composite it with the video it was rendered from, or render {input.name} "
                                          "into another folder")
    return manifest, [_read_track(folder, record) for record in manifest["tracks"]]


def _read_manifest(path: Path) -> dict:
    """patch.json as a JSON object; PatchError naming it when it is not one (damaged, or not ours). What it holds
    is checked by its format and signature (read_render); behind a valid seal its fields are the render's own."""
    fix = "render the folder again: facewright swap INPUT --model M --render-only DIR"
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise PatchError(f"{MANIFEST} is not readable JSON ({exc})", path=path, fix=fix) from exc
    if not isinstance(manifest, dict):
        raise PatchError(f"{MANIFEST} is JSON but not a render manifest (a JSON object)", path=path, fix=fix)
    return manifest


def _check_signed(manifest: dict, path: Path, trust: Trust) -> None:
    seal = manifest.get(SEAL)
    fix = "put back the patch.json the render wrote, or render again (swap --render-only) into a new folder"
    if not isinstance(seal, dict):
        raise PatchError(f"{MANIFEST} is not signed", path=path, fix=fix)
    signed.check_seal(seal, {k: v for k, v in manifest.items() if k != SEAL}, trust, what="render manifest",
                      path=path, fix=fix, error=PatchError)


def _read_track(folder: Path, record: dict) -> StoredTrack:
    track, names = record["track"], track_files(record["track"])
    for name in names.values():
        if not (folder / name).is_file():
            raise PatchError(f"track {track}'s file {name} is missing", path=folder / name,
                             fix="put the file back, or render again into a new folder")
    edited = tuple(role for role, name in names.items() if sha256_file(folder / name) != record["sha256"][name])
    try:
        with np.load(folder / names["geometry"], allow_pickle=False) as npz:
            arrays = dict(npz)
    except (OSError, ValueError) as exc:
        raise PatchError(f"track {track}'s geometry cannot be read: {exc}", path=folder / names["geometry"],
                         fix="put back the file the render wrote, or render again") from exc
    count, size = record["frames"], record["size"]
    if arrays["frames"].shape != (count,) or arrays["matrices"].shape != (count, 2, 3) \
            or arrays["points"].shape != (count, 68, 2):
        raise PatchError(f"track {track}'s geometry does not hold {count} frames", path=folder / names["geometry"],
                         fix="put back the file the render wrote, or render again")
    for role in ("faces", "masks"):
        _check_video(folder / names[role], track, role, count, size)
    return StoredTrack(track, folder, arrays["frames"], arrays["matrices"], arrays["points"], size,
                       int(record["payload"], 16), color_from_arrays(arrays), edited)


def _check_video(path: Path, track: int, role: str, count: int, size: int) -> None:
    info = probe(path).video
    if info is None or info.frames != count or (info.width, info.height) != (size, size):
        found = "no video" if info is None else f"{info.frames} frame(s) of {info.width} x {info.height}"
        raise PatchError(f"track {track}'s {role} file holds {found}, not the {count} frame(s) of {size} x {size} "
                         "the render wrote", path=path,
                         fix=f"an edited file must keep every frame and the size: export all {count} frames at "
                             f"{size} x {size}, or put back the rendered file")
