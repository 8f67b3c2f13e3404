"""`facewright composite INPUT --patch DIR -o OUT`: a swapped video made from the faces `swap --render-only`
rendered (swap.rendered), without the model: what a CPU node does after a GPU node rendered.

Before any frame is read, on this machine (the one that signs): the render folder must be complete, its
patch.json signed by a signer this machine trusts and unchanged since, and made from this very input (sha256);
every consent the render was checked under must still be active, and none of the model's training consents
revoked; their ids go into the output's manifest. Then the input is decoded
once; each frame's stored faces are composited exactly as `swap` composites the faces it renders
(compose.FaceCompositor: mask, color with the render's fitted maps, hands and mask-model occlusion and
detail transfer from this frame's pixels, blend), and the frame is labelled and watermarked, encoded with the
input's timestamps and audio, and the file signed and recorded. A track file changed since the render (an
artist's fix) is used when it still holds its frames; the manifest's "edited" fact and the result's notes say
which. A face file's own watermark is taken off before compositing (rendered.unmark): the output carries
its own, once.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from facewright.config import MarkOptions, SwapOptions, VideoOptions, to_dict
from facewright.errors import OptionError, PatchError
from facewright.faces.hands import HandTracker
from facewright.files import check_output, require_file, sha256_file, staging
from facewright.media.image import Frame
from facewright.media.kind import MediaKind
from facewright.media.transcode import transcode
from facewright.media.video import VideoFrame
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance.enforce import active_consent, refuse_revoked
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.label import Label
from facewright.provenance.mark import FrameMarker, MarkPlan, MarkResult, check_output_kind, record_mark, seal
from facewright.provenance.trust import Trust
from facewright.swap.compose import FaceCompositor, FaceJob, Rendered
from facewright.swap.occlusion import Occlusion
from facewright.swap.pipeline import SwapResult
from facewright.swap.rendered import StoredTrack, read_render
from facewright.train.mask_model import load_mask_model
from facewright.workspace import Workspace

COMPOSITED = ("composited", "faces rendered in a separate step (swap --render-only) and composited from its folder")


def composite(ws: Workspace, input: str | Path, patch: str | Path, output: str | Path, marking: MarkOptions,
              video: VideoOptions, *, signer: SigningIdentity, trust: Trust, progress: ProgressFactory = no_progress,
              payloads: Iterator[int] | None = None, device: str = "auto") -> SwapResult:
    """Composite the render folder `patch` into `input`'s frames and write `output` (labelled, watermarked,
    signed, recorded). `payloads`: the output's watermark id (default random; see pipeline.SwapJob.payloads).
    `device`: where a mask model named by the render runs."""
    start = time.perf_counter()
    input = require_file(input)
    output = check_output(output, [input])
    if check_output_kind(input, output) != MediaKind.VIDEO:
        raise OptionError("composite makes a video from a video's render", path=input,
                          fix="give the video that `swap --render-only` rendered")
    input_sha256 = sha256_file(input)
    manifest, tracks = read_render(Path(patch), input, input_sha256, trust)
    check_recorded(ws, Path(patch), manifest, tracks, input_sha256)
    consent_ids = tuple(active_consent(ws, c, trust=trust).id for c in manifest["consent_ids"])
    model = manifest["model"]
    refuse_revoked(ws, model["consent_ids"], f"model {model['name']}", Path(patch), trust=trust)
    render = manifest["render"]  # the render's options, hands and mask model resolved
    options = SwapOptions(**{f.name: render[f.name] for f in dataclasses.fields(SwapOptions) if f.name in render})
    edits = edited(tracks)
    extra = (*(tuple(e) for e in manifest["extra"]), COMPOSITED, *((("edited", edits),) if edits else ()))
    plan = MarkPlan(Label(marking.label, marking.label_position), consent_ids, model=model["name"],
                    model_sha256=model["sha256"], parent=input, extra=extra,
                    names=marking.name_in_manifest, **({"payload": next(payloads)} if payloads is not None else {}))
    config = {"input": str(input), "patch": str(patch), "output": str(output), "model": model["name"],
              **to_dict(marking), **to_dict(video)}
    with ws.run("composite", config) as run:
        occlusion = Occlusion(HandTracker(video=True) if options.hands == "on" else None,
                              load_mask_model(ws, options.mask_model, device) if options.mask_model else None,
                              options.mouth == "keep")
        with contextlib.closing(occlusion):
            compositor = FaceCompositor(options, model["face_type"], {t.id: t.color for t in tracks if t.color},
                                        occlusion)
            stored = StoredFaces(compositor, tracks, FrameMarker(plan, MediaKind.VIDEO))
            with staging(output, "composite") as tmp:
                unsigned = tmp / f"unsigned{output.suffix.lower()}"
                encoded = transcode(input, unsigned, options=video, batch_fn=stored, batch=options.batch,
                                    progress=progress)
                seal(unsigned, output, plan, signer)
        result = MarkResult.of(output, plan, MediaKind.VIDEO, encoded.frames, stored.marker)
        record_mark(ws, run.id, result, plan, signer.fingerprint)
    seconds = time.perf_counter() - start
    stages = {**compositor.timer.seconds}
    stages["decode, mark, encode, sign"] = seconds - sum(stages.values())
    notes = (*manifest["notes"], *((f"edited: {edits}",) if edits else ()))
    return SwapResult(input, output, MediaKind.VIDEO, encoded.frames, stored.frames_swapped, len(tracks),
                      manifest["tracks_seen"], seconds, plan.payload_hex, result.sha256, None, stages,
                      encoded.input_frames, encoded.corrupt_packets, manifest["untouched_frames"], notes)


def check_recorded(ws: Workspace, folder: Path, manifest: dict, tracks: Sequence[StoredTrack],
                   input_sha256: str) -> None:
    """Behind patch.json's signature (checked by read_render), the catalog is the witness. Every track's faces
    file must be one this workspace's render recorded (by its watermark id) for the consents, model and input
    the folder names, and where the faces go (the geometry, placed by that render's consent checks) must be
    unedited."""
    for track in tracks:
        if "geometry" in track.edited:
            raise PatchError(f"track {track.id}'s geometry (where its faces go) changed since the render", path=folder,
                             fix="faces are composited only where the render's consent checks placed them: render "
                                 "again (swap --render-only) rather than editing the .npz")
        row = ws.conn.execute("SELECT consent_ids_json, model_sha256, parent_sha256 FROM marks WHERE payload = ?",
                              (f"{track.payload:016x}",)).fetchone()
        if row is None or (json.loads(row[0]), row[1], row[2]) != (list(manifest["consent_ids"]),
                                                                   manifest["model"]["sha256"], input_sha256):
            raise PatchError(f"track {track.id} is not a render this workspace recorded for these consents, this "
                             "model and this input", path=folder,
                             fix="composite in the workspace that rendered it (swap --render-only), from its "
                                 "unaltered patch.json")


def edited(tracks: Sequence[StoredTrack]) -> str:
    """What the manifest's "edited" fact says: the track files changed since the render ("" when none)."""
    return "; ".join(f"patch track {t.id} {' and '.join(t.edited)} edited after rendering" for t in tracks
                     if t.edited)


class _Cursor:
    """One stored track read in frame order alongside the input's frames."""

    def __init__(self, track: StoredTrack):
        self.track, self.position, self.faces = track, 0, track.faces()

    def take(self, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """(points, matrix, face, mask) of `frame`, or None when the track is not swapped there."""
        frames = self.track.frames
        while self.position < len(frames) and frames[self.position] < frame:  # a frame the input lost
            next(self.faces)
            self.position += 1
        if self.position >= len(frames) or frames[self.position] != frame:
            return None
        k = self.position
        self.position += 1
        face, mask = next(self.faces)
        return self.track.points[k], self.track.matrices[k], face, mask


class StoredFaces:
    """Per batch of decoded frames (transcode's batch_fn): the stored faces of those frames composited in,
    in the render's track order, and every frame labelled and watermarked."""

    def __init__(self, compositor: FaceCompositor, tracks: Sequence[StoredTrack], marker: FrameMarker):
        self.compositor, self.marker = compositor, marker
        self.cursors = [_Cursor(t) for t in tracks]
        self.frames_swapped = 0

    def __call__(self, frames: list[VideoFrame]) -> list[Frame]:
        jobs: list[FaceJob] = []
        matrices, faces, masks = [], [], []
        for i, frame in enumerate(frames):
            for cursor in self.cursors:
                found = cursor.take(frame.index)
                if found is not None:
                    jobs.append((i, cursor.track.id, found[0]))
                    matrices.append(found[1])
                    faces.append(found[2])
                    masks.append(found[3])
        images = [f.image for f in frames]
        if jobs:
            self.frames_swapped += len({job[0] for job in jobs})
            images = self.compositor.composite(images, jobs, Rendered(matrices, np.stack(faces), np.stack(masks)),
                                               [f.time for f in frames])
        return [self.marker(image) for image in images]
