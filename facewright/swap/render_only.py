"""`swap --render-only DIR`: the swap's first pass and choice of faces as in one process (pipeline.py), then
only the model's work, into a render folder (swap.rendered) that `facewright composite` finishes elsewhere.

The consents are checked here exactly as for a swap (the faces chosen are checked frame by frame against the
target's consent photos); their ids go into the folder, and composite checks them again before it writes.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

from facewright.config import SwapOptions, made_by
from facewright.errors import OptionError
from facewright.faces.types import Points
from facewright.files import sha256_file
from facewright.media.kind import MediaKind, media_kind
from facewright.media.transcode import batches
from facewright.media.video import read_video
from facewright.prefetch import prefetch
from facewright.swap.compose import Compositor, face_jobs, fit_track_colors
from facewright.swap.pipeline import SwapJob, SwapResult, scan_video
from facewright.swap.rendered import FORMAT, RenderWriter

# Options that name other outputs than the render folder: not part of what it holds (nor are the runner options).
OTHER_OUTPUTS = ("patch", "render_only", "preview")


def render_video(job: SwapJob, input: Path, folder: Path) -> SwapResult:
    """`swap --render-only`: swap_video's first pass and choice of faces, then only the model's work on the
    chosen faces, into the render folder (swap.rendered) that `facewright composite` finishes. Tracks an
    earlier run completed in `folder` for the same input, model and options are kept, not rendered again."""
    start = time.perf_counter()
    scanned = scan_video(job, input, fix="give a video; an image is swapped in one step")
    video, footage, chosen = scanned.video, scanned.footage, scanned.chosen
    # a file name that is not UTF-8 (bytes kept as surrogates) in a form the signature's JSON can hold
    name = input.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    facts = {"format": FORMAT, "input": {"name": name, "sha256": sha256_file(input), "frames": footage.frames},
             "model": {"name": job.model.name, "sha256": job.model.sha256, "face_type": job.model.face_type,
                       "resolution": job.model.resolution, "consent_ids": list(job.model.consent_ids)},
             "consent_ids": [job.source_consent.id, chosen.consent.id], "extra": [list(e) for e in job.extra],
             "render": {**{k: v for k, v in made_by(job.options).items() if k not in OTHER_OUTPUTS},
                        # resolved: the composite keeps hands and uses the mask model exactly when this swap would
                        "hands": "on" if job.hands else "off",
                        "mask_model": job.mask_model.name if job.mask_model else ""},
             "tracks_seen": len(footage.tracks), "untouched_frames": chosen.untouched,
             "notes": [*job.notes, *chosen.notes]}
    writer = RenderWriter(folder, facts, video.fps or 30, video.time_base,
                          lambda: job.intermediate_plan(input, chosen.consent), job.signer, job.record)
    with contextlib.closing(writer):
        todo = {t.id for t in chosen.tracks if not writer.done(t.id)}
        writer.colors(fit_track_colors(job.model, [t for t in chosen.tracks if t.id in todo], job.options))
        faces = {frame: kept for frame, found in chosen.faces.items() if (kept := [f for f in found if f[0] in todo])}
        compositor = Compositor(job.model, job.options)
        _render_pass(job, input, faces, compositor, writer)
        manifest = writer.finish([t.id for t in chosen.tracks])
    seconds = time.perf_counter() - start
    stages = {**scanned.stages(), **compositor.timer.seconds}
    stages["decode, write, sign"] = seconds - sum(stages.values())
    kept = (f"{len(writer.reused)} track(s) kept from an earlier render into this folder",) if writer.reused else ()
    return SwapResult(input, manifest, MediaKind.VIDEO, footage.frames, len(chosen.faces), len(chosen.tracks),
                      len(footage.tracks), seconds, "", sha256_file(manifest), None, stages, video.frames, 0,
                      chosen.untouched, job.notes + chosen.notes + kept)


def _render_pass(job: SwapJob, input: Path, faces: dict[int, list[tuple[int, Points]]], compositor: Compositor,
                 writer: RenderWriter) -> None:
    """Decode up to the last face to render, rendering the faces of each batch of frames; each track's files
    are finished as soon as the pass is past its last frame (a track complete is kept if the run stops)."""
    last: dict[int, int] = {}
    for frame, found in faces.items():
        for track, _ in found:
            last[track] = max(last.get(track, -1), frame)
    if not last:
        return
    with job.progress(total=max(last.values()) + 1, desc=f"render {input.name}", unit="frame") as bar:
        for frames in prefetch(batches(read_video(input), job.options.batch), depth=2):
            jobs = face_jobs([faces.get(f.index, []) for f in frames])
            if jobs:
                writer.add(frames, jobs, compositor.render([f.image for f in frames], jobs)[0])
            for track in [t for t, end in last.items() if end <= frames[-1].index]:
                writer.end(track)
                del last[track]
            bar.update(len(frames))
            if not last:
                break


def check_render_only(input: Path, options: SwapOptions) -> tuple[Path, Path]:
    """(input, render folder) once `--render-only` is known to fit the input and the other options."""
    if media_kind(input) != MediaKind.VIDEO:
        raise OptionError("--render-only is for a video input", path=input,
                          fix="swap an image in one step (drop --render-only)")
    if options.patch or options.preview:
        raise OptionError("--patch and --preview come with a swapped video; --render-only writes none", path=input,
                          fix="give them to `facewright composite` instead (--preview), or drop them")
    folder = Path(options.render_only)
    if folder.exists() and not folder.is_dir():
        raise OptionError("the --render-only path is a file", path=folder, fix="give a folder (made if missing)")
    return input, folder
