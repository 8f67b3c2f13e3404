"""A `facewright swap` call: the model and the consents resolved once, then each input swapped in turn.

A folder of images is a batch: a file that fails is reported and the batch goes on. Outputs go to the
path given, or to the workspace's outputs/ folder; each is recorded in the catalog with its watermark id.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from facewright.assets import REGISTRY, cached_status
from facewright.config import MarkOptions, SwapOptions, VideoOptions, to_dict
from facewright.errors import DiskFullError, FacewrightError, InputNotFoundError, OptionError
from facewright.files import check_output, require_file
from facewright.media.kind import MediaKind, media_kind
from facewright.media.segments import Chunk
from facewright.names import printable
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance.consent import Role
from facewright.provenance.enforce import refuse_revoked, require_consent
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.mark import check_output_kind
from facewright.provenance.trust import Trust
from facewright.swap.chunks import swap_chunks, swap_video_chunked
from facewright.swap.model import SwapModel, load_swap_model
from facewright.swap.pipeline import SwapJob, SwapResult, image_files, swap_image, swap_video
from facewright.swap.render_only import check_render_only, render_video
from facewright.train.mask_model import MaskModel, load_mask_model, mask_model_for
from facewright.workers import LazyPool, Pool
from facewright.workspace import Run, RunStatus, Workspace

OUTPUTS = "outputs"


@dataclass(frozen=True)
class SwapFailure:
    input: Path
    error: FacewrightError


def swap(ws: Workspace, input: str | Path, output: str | Path | None, model: str | Path, options: SwapOptions,
         marking: MarkOptions, video: VideoOptions, *, signer: SigningIdentity, trust: Trust,
         resume: bool = False, progress: ProgressFactory = no_progress,
         payloads: Iterator[int] | None = None, loaded: SwapModel | None = None,
         pool: Pool | None = None) -> list[SwapResult | SwapFailure]:
    """Swap the faces of a video, an image, or every image of a folder (see pipeline.py); `signer` signs
    every output; the consents are checked against `trust` (the anchors and the ledger heads, from the API).

    `payloads`: the outputs' watermark ids in turn (default random; see SwapJob.payloads). `loaded`: a model
    already made (the GPU bench's faces rendered elsewhere) instead of loading `model`'s checkpoint; its
    consents are checked all the same. `pool`: where the chunks of a long video run (default: a local pool
    of `options.workers` processes, started only for a video long enough to split; see chunks.py).
    """
    input = Path(input)
    if not input.exists():
        raise InputNotFoundError("no such file or folder", path=input, fix="check the path and its spelling")
    with _Pools(pool, options.workers) as pools:  # closed however the call ends
        if input.is_file() and not (options.patch or options.render_only) and media_kind(input) == MediaKind.VIDEO:
            pools.plan(input)  # a video to split starts its workers now: they load while the model and consents do
        if loaded is None:
            loaded = load_swap_model(ws, model, options.device)
        target, extra = _target(loaded, options)
        refuse_revoked(ws, loaded.consent_ids, f"model {loaded.name}", loaded.checkpoint, trust=trust)
        source_consent = require_consent(ws, loaded.source, Role.SOURCE, trust=trust)
        require_consent(ws, target, Role.TARGET, trust=trust)  # early: before any frame is read; faces: per input
        mask_model, notes = _mask_model(ws, loaded, options)
        config = {"input": str(input), "output": str(output), "model": loaded.name,
                  "checkpoint": str(loaded.checkpoint), **to_dict(options), **to_dict(marking), **to_dict(video)}
        with ws.run("swap", config) as run:
            job = SwapJob(ws, loaded, options, marking, video, signer, run, source_consent, target, extra, progress,
                          payloads, trust=trust, mask_model=mask_model, hands=_hands(options), notes=notes)
            if input.is_dir():
                results = _folder(job, input, Path(output) if output else ws.root / OUTPUTS / input.name, resume)
            else:
                results = [_one(job, require_file(input), _output_path(ws, input, output), pools=pools, resume=resume)]
            _end(run, results)
        return results


class _Pools(LazyPool):
    """The swap's pool, and the chunks of each video it has planned."""

    def __init__(self, given: Pool | None, workers: int):
        super().__init__(given, workers, helps=True)
        self._chunks: dict[Path, list[Chunk]] = {}

    def plan(self, input: Path) -> list[Chunk]:
        """The chunks `input` is swapped in; more than one starts the pool."""
        if input not in self._chunks:
            self._chunks[input] = swap_chunks(input, self.size)
        if len(self._chunks[input]) > 1:
            self.get()
        return self._chunks[input]


def _target(model: SwapModel, options: SwapOptions) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The identity whose faces are replaced, and the manifest's note when it is not the model's person B."""
    target = options.target or model.target
    if target == model.target:
        return target, ()
    if not options.force:
        raise OptionError(f"model {model.name} learned {model.target}'s faces as person B, not {target}'s",
                          path=model.checkpoint,
                          fix=f"train a model on {target}'s faceset, or pass --force (it is recorded in the "
                              "output's manifest)")
    # the manifest says that it was forced, not who the two people are (the run's config in the catalog does)
    return target, (("forced", "model trained on another person B than the one whose faces it replaced"),)


def _mask_model(ws: Workspace, model: SwapModel, options: SwapOptions) -> tuple[MaskModel | None, tuple[str, ...]]:
    """The mask model of `--mask occlusion` (or of auto, when the target's faceset has one) and a note when it
    learned another faceset than the model's person B."""
    if options.mask not in ("auto", "occlusion"):
        if options.mask_model:
            raise OptionError(f"--mask-model is used by --mask occlusion, not --mask {options.mask}",
                              fix="drop --mask-model, or use --mask occlusion")
        return None, ()
    name = options.mask_model or mask_model_for(ws, model.target)
    if name is None:
        if options.mask == "occlusion":
            raise OptionError(f"--mask occlusion needs a mask model, and none learned faceset {model.target!r}",
                              fix=f"train one: facewright mask train {model.target} (or name one: --mask-model NAME)")
        return None, ()
    loaded = load_mask_model(ws, name, options.device)
    if loaded.faceset == model.target:
        return loaded, ()
    return loaded, (f"mask model {loaded.name} learned faceset {loaded.faceset}, not {model.target}: occluders it "
                    "never saw on this person may be swapped over; train one on the target's faceset",)


def _hands(options: SwapOptions) -> bool:
    """Hands are kept in front of the face when asked, or (auto) whenever the hand model is in the cache."""
    if options.hands != "auto":
        return options.hands == "on"
    return cached_status(REGISTRY["hand_landmarker.task"]) == "ok"


def _end(run: Run, results: list[SwapResult | SwapFailure]) -> None:
    """A batch where every file failed is a failed run; the failures are its error text either way."""
    failed = [r for r in results if isinstance(r, SwapFailure)]
    errors = "; ".join(f"{f.input.name}: {f.error}" for f in failed) or None
    run.end(RunStatus.FAILED if failed and len(failed) == len(results) else RunStatus.DONE, errors)


def _one(job: SwapJob, input: Path, output: Path, inputs: list[Path] | None = None,
         pools: _Pools | None = None, resume: bool = False) -> SwapResult:
    if job.options.render_only:  # the faces only, in one process, for `facewright composite` (render_only.py)
        return render_video(job, *check_render_only(input, job.options))
    output = check_output(output, inputs or [input])
    kind = check_output_kind(input, output)
    if kind == MediaKind.IMAGE and (job.options.preview or job.options.patch):
        raise OptionError("--preview and --patch are for video inputs", path=input,
                          fix="drop them for images: the output itself shows the swap")
    if kind == MediaKind.IMAGE:
        return swap_image(job, input, output)
    # --patch collects every track's faces in one process: it keeps the single-process path
    chunks = pools.plan(input) if pools is not None and not job.options.patch else []
    if len(chunks) > 1:
        return swap_video_chunked(job, input, output, chunks, pools.get(), resume)
    return swap_video(job, input, output)


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
                except DiskFullError:
                    raise  # not this file's fault: every next one would fail the same way
                except FacewrightError as exc:  # one bad file must not cost the others
                    results.append(SwapFailure(path, exc))
            bar.update(1)
    return results


def _output_path(ws: Workspace, input: Path, output: str | Path | None) -> Path:
    if output is not None:
        return Path(output)
    suffix = input.suffix.lower()
    if media_kind(input) == MediaKind.IMAGE:
        suffix = suffix if suffix in (".png", ".jpg", ".jpeg") else ".png"
    else:
        suffix = suffix if suffix in (".mp4", ".mov") else ".mp4"
    return ws.root / OUTPUTS / f"{printable(input.stem)}-swapped{suffix}"
