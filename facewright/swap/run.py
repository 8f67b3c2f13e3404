"""A `facewright swap` call: the model and the consents resolved once, then each input swapped in turn.

A folder of images is a batch: a file that fails is reported and the batch goes on. Outputs go to the
path given, or to the workspace's outputs/ folder; each is recorded in the catalog with its watermark id.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from facewright.config import MarkOptions, SwapOptions, VideoOptions, to_dict
from facewright.errors import ConsentError, FacewrightError, InputNotFoundError, OptionError
from facewright.files import check_output, require_file
from facewright.media.image import IMAGE_SUFFIXES
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance.consent import get_consent
from facewright.provenance.enforce import require_consent
from facewright.provenance.keys import load_identity
from facewright.swap.model import SwapModel, load_swap_model
from facewright.swap.pipeline import SwapJob, SwapResult, image_files, output_kind, swap_image, swap_video
from facewright.workspace import Workspace

OUTPUTS = "outputs"


@dataclass(frozen=True)
class SwapFailure:
    input: Path
    error: FacewrightError


def swap(ws: Workspace, source: str | Path, output: str | Path | None, model: str | Path, options: SwapOptions,
         marking: MarkOptions, video: VideoOptions, *, resume: bool = False, progress: ProgressFactory = no_progress,
         payloads: Iterator[int] | None = None) -> list[SwapResult | SwapFailure]:
    """Swap the faces of a video, an image, or every image of a folder (see pipeline.py).

    `payloads`: the outputs' watermark ids in turn (default random; see SwapJob.payloads).
    """
    source = Path(source)
    if not source.exists():
        raise InputNotFoundError("no such file or folder", path=source, fix="check the path and its spelling")
    job = _job(ws, model, options, marking, video, progress, source, output)
    job.payloads = payloads
    try:
        if source.is_dir():
            results = _folder(job, source, Path(output) if output else ws.root / OUTPUTS / source.name, resume)
        else:
            results = [_one(job, require_file(source), _output_path(ws, source, output))]
    except BaseException as exc:
        ws.finish_run(job.run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", repr(exc))
        raise
    failed = [r for r in results if isinstance(r, SwapFailure)]
    ws.finish_run(job.run_id, "failed" if failed and len(failed) == len(results) else "done",
                  "; ".join(f"{f.input.name}: {f.error}" for f in failed) or None)
    return results


def _job(ws: Workspace, model: str | Path, options: SwapOptions, marking: MarkOptions, video: VideoOptions,
         progress: ProgressFactory, source: Path, output: str | Path | None) -> SwapJob:
    loaded = load_swap_model(ws, model, options.device)
    target = options.target or loaded.target
    extra: tuple[tuple[str, str], ...] = ()
    if target != loaded.target:
        if not options.force:
            raise OptionError(f"model {loaded.name} learned {loaded.target}'s faces as person B, not {target}'s",
                              path=loaded.checkpoint,
                              fix=f"train a model on {target}'s faceset, or pass --force (it is recorded in the "
                                  "output's manifest)")
        extra = (("forced", f"model trained on faceset {loaded.target}, used on {target}"),)
    _check_training_consents(ws, loaded)
    source_consent = require_consent(ws, loaded.source, "source")
    require_consent(ws, target, "target")  # early: before any frame is read; faces are checked per input
    run_id = ws.start_run("swap", {"input": str(source), "output": str(output), "model": loaded.name,
                                   "checkpoint": str(loaded.checkpoint), **to_dict(options), **to_dict(marking),
                                   **to_dict(video)})
    return SwapJob(ws, loaded, options, marking, video, load_identity(), run_id, source_consent, target, extra,
                   progress)


def _check_training_consents(ws: Workspace, model: SwapModel) -> None:
    """A model learned under a consent later revoked is not used, whatever newer consent exists."""
    for consent_id in model.consent_ids:
        record = get_consent(ws, consent_id)
        if record.status() == "revoked":
            raise ConsentError(f"model {model.name} was trained under consent {record.id[:12]} of "
                               f"{record.identity}, which has been revoked", path=model.checkpoint,
                               fix="do not use this model; train a new one under an active consent")


def _one(job: SwapJob, source: Path, output: Path, inputs: list[Path] | None = None) -> SwapResult:
    output = check_output(output, inputs or [source])
    kind = output_kind(source, output)
    if kind == "image" and (job.options.preview or job.options.patch):
        raise OptionError("--preview and --patch are for video inputs", path=source,
                          fix="drop them for images: the output itself shows the swap")
    return (swap_video if kind == "video" else swap_image)(job, source, output)


def _folder(job: SwapJob, folder: Path, out: Path, resume: bool) -> list[SwapResult | SwapFailure]:
    results: list[SwapResult | SwapFailure] = []
    files = list(image_files(folder))
    if not files:
        raise InputNotFoundError("no images in the folder", path=folder, fix="give a folder of PNG/JPEG images")
    with job.progress(total=len(files), desc=f"swap {folder.name}", unit="image") as bar:
        for path in files:
            # a.png stays a.png; a.webp becomes a.webp.png, so no two inputs share an output name
            target = out / (path.name if path.suffix.lower() in (".png", ".jpg", ".jpeg") else path.name + ".png")
            if not (resume and target.is_file()):
                try:
                    results.append(_one(job, path, target, files))
                except FacewrightError as exc:  # one bad file must not cost the others
                    results.append(SwapFailure(path, exc))
            bar.update(1)
    return results


def _output_path(ws: Workspace, source: Path, output: str | Path | None) -> Path:
    if output is not None:
        return Path(output)
    suffix = source.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        suffix = suffix if suffix in (".png", ".jpg", ".jpeg") else ".png"
    else:
        suffix = suffix if suffix in (".mp4", ".mov") else ".mp4"
    return ws.root / OUTPUTS / f"{source.stem}-swapped{suffix}"
