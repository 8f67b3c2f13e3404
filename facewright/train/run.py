"""A training run from the workspace's point of view: facesets in, consent checked, model folder out.

Consent comes before the first step: A (whose face is learned to be put into other footage) needs a
consent for the source role, B (whose footage will get A's face) one for the target role, and the faces in
both facesets must be the people in those consent photos. The consent ids go into every checkpoint.

A resumed run continues the checkpoint's model: its architecture, resolution and widths come from the
checkpoint (a flag that contradicts them is refused, not ignored), its people must be the --src and --dst
given (their facesets may have grown since), and the other options (--lr, --steps, ...) come from the
command line. Resuming from an earlier checkpoint than the newest sets the later ones aside in
checkpoints/rejected/, so that the run's newest checkpoint is again the one it continues from.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from facewright.config import TrainOptions
from facewright.errors import CheckpointError, OptionError
from facewright.faces.identity import IdentityEncoder
from facewright.faces.sface import SFaceEncoder
from facewright.files import atomic_path
from facewright.locks import Lock
from facewright.names import check_name
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance.consent import Role
from facewright.provenance.enforce import require_consent, verified_consents
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.likeness import consent_reference
from facewright.provenance.trust import Trust
from facewright.train.batches import Pair
from facewright.train.checkpoint import MODELS, latest_checkpoint, list_checkpoints, load_checkpoint, set_aside_later
from facewright.train.data import check_likeness, check_pair, load_faceset
from facewright.train.distributed import from_env, pick_device
from facewright.train.models import create_model
from facewright.train.trainer import Trainer, TrainResult
from facewright.workspace import Workspace

LOCK = ".lock"  # models/<name>/.lock: held by the run training the model (its rank 0), names its process
ARCHITECTURE = ("model", "resolution", "ae_dims", "e_dims", "d_dims", "d_mask_dims")  # fixed by a checkpoint


def model_folder(ws: Workspace, src: str, dst: str, options: TrainOptions, name: str | None) -> Path:
    """models/<name>/, or without a name the pair's default folder (an older model's folder where only it exists).

    Every name is checked here, so no --name, --src or --dst makes a path outside the models folder.
    """
    if name is not None:
        return ws.root / MODELS / check_name(name, "--name")
    folder = ws.root / MODELS / f"{pair_prefix(src, dst)}{options.model}-{options.resolution}"
    legacy = ws.root / MODELS / f"{legacy_prefix(src, dst)}{options.model}-{options.resolution}"
    return legacy if legacy.is_dir() and not folder.exists() else folder


def pair_prefix(src: str, dst: str) -> str:
    """The start of the pair's default model names, pair-<8 hex of the two names>-: they name neither person (a
    model's name shows in listings and logs, and with --name-in-manifest in the manifest of every output)."""
    digest = hashlib.sha256(json.dumps([check_name(src, "--src"), check_name(dst, "--dst")]).encode()).hexdigest()
    return f"pair-{digest[:8]}-"


def legacy_prefix(src: str, dst: str) -> str:
    """The start of the pair's default model names before they stopped naming the people, SRC-to-DST-: an older
    model stays found (resumed, swapped with) under its name."""
    return f"{check_name(src, '--src')}-to-{check_name(dst, '--dst')}-"


@dataclasses.dataclass(frozen=True)
class Resume:
    folder: Path  # the model folder the run continues in
    path: Path  # the checkpoint file
    state: dict[str, Any]


def find_resume(ws: Workspace, src: str, dst: str, options: TrainOptions, resume: bool | str | Path,
                name: str | None, explicit: Collection[str]) -> Resume | None:
    """The checkpoint to continue from: the newest of the model folder (resume=True) or the file named.

    Without --name, and with no --model or --resolution given, the folder is the one model of this pair
    that has checkpoints (several: --name must say which).
    """
    if not resume:
        return None
    if resume is not True:
        path = Path(resume)
        if name is not None:
            folder = model_folder(ws, src, dst, options, name)
        elif path.parent.name == "checkpoints":
            folder = path.parent.parent
        else:
            folder = model_folder(ws, src, dst, options, None)
        return Resume(folder, path, load_checkpoint(path))
    folder = model_folder(ws, src, dst, options, name)
    architecture_given = {"model", "resolution"} & set(explicit)
    if name is None and not architecture_given and latest_checkpoint(folder / "checkpoints") is None:
        candidates = sorted(p.parent for prefix in (pair_prefix(src, dst), legacy_prefix(src, dst))
                            for p in (ws.root / MODELS).glob(f"{prefix}*/checkpoints") if list_checkpoints(p))
        if len(candidates) > 1:
            raise OptionError(f"{len(candidates)} models of {src} to {dst} have checkpoints: "
                              f"{', '.join(c.name for c in candidates)}", fix="say which with --name NAME")
        folder = candidates[0] if candidates else folder
    path = latest_checkpoint(folder / "checkpoints")
    if path is None:
        raise CheckpointError("no checkpoint to resume from", path=folder / "checkpoints",
                              fix="start without --resume, or name the model (--name) or the file (--resume FILE)")
    return Resume(folder, path, load_checkpoint(path))


def with_checkpoint_model(options: TrainOptions, found: Resume, explicit: Collection[str]) -> TrainOptions:
    """`options` with the checkpoint's architecture; OptionError where an explicit option contradicts it."""
    model = found.state["model"]
    fixed = {"model": model["name"], "resolution": model["resolution"],
             **{k: model["options"].get(k, 0) for k in ARCHITECTURE[2:]}}
    for key in ARCHITECTURE:
        given = getattr(options, key)
        if key in explicit and given != fixed[key] and not (key.endswith("_dims") and given == 0):
            flag = f"--{key.replace('_', '-')}"
            raise OptionError(f"the checkpoint is a {fixed['model']} model at {fixed['resolution']} px with "
                              f"{key} {fixed[key]}, but {flag} {given} was given", path=found.path,
                              fix=f"drop {flag} to continue this model, or train a new one under another --name")
    return dataclasses.replace(options, **fixed)


def check_resumed_pair(found: Resume, src: str, dst: str) -> None:
    learned = found.state["facesets"]
    if (learned["a"]["name"], learned["b"]["name"]) != (src, dst):
        raise OptionError(f"the checkpoint learned {learned['a']['name']} to {learned['b']['name']}, not "
                          f"{src} to {dst}", path=found.path,
                          fix=f"resume with --src {learned['a']['name']} --dst {learned['b']['name']}, or train "
                              "a new model without --resume")


def train_pair(ws: Workspace, src: str, dst: str, options: TrainOptions, *, resume: bool | str | Path = False,
               name: str | None = None, explicit: Collection[str] = (), progress: ProgressFactory = no_progress,
               signer: SigningIdentity | None, trust: Trust) -> TrainResult:
    """Load both facesets, check consent, and train (or continue) the pair model.

    `explicit`: the option names the user set (flags or preset), which a resumed checkpoint may not contradict.
    `signer`: signs the previews (rank 0 with previews on must have one; the caller loads it). `trust`: what the
    consents are checked against (every rank checks them; the caller loads it).
    """
    if src == dst:
        raise OptionError(f"--src and --dst are both {src!r}", fix="train a pair of two different people")
    place = from_env()
    device = pick_device(options.device, place)
    found = find_resume(ws, src, dst, options, resume, name, explicit)
    if found is not None:
        options = with_checkpoint_model(options, found, explicit)
        check_resumed_pair(found, src, dst)
    with torch.device("meta"):  # a bad architecture option fails here, before any face is loaded
        create_model(options.model, options.resolution, **options.model_options())
    folder = found.folder if found is not None else model_folder(ws, src, dst, options, name)
    with model_lock(folder) if place.main else contextlib.nullcontext():  # before the faces load: refused at once
        a = load_faceset(ws, src, options.resolution, device=device)
        b = load_faceset(ws, dst, options.resolution, device=device)
        check_pair(a, b)
        consent_a = require_consent(ws, src, Role.SOURCE, a.embeddings, trust=trust)
        consent_b = require_consent(ws, dst, Role.TARGET, b.embeddings, trust=trust)
        if place.main:  # the crop files themselves, not only their catalog rows, must show the consenting people
            check_crops(ws, ((src, Role.SOURCE), (dst, Role.TARGET)), trust)
        trainer = Trainer(options, Pair(a, b, consent_a.id, consent_b.id), folder,
                          resume=found.state if found else None, progress=progress, place=place, signer=signer)
        if place.main:  # only once the trainer accepted its options: a refused run leaves the folder as it was
            if found is not None:
                set_aside_later(folder / "checkpoints", int(found.state["step"]))
            write_json(folder / "train_config.json", {"src": src, "dst": dst, **dataclasses.asdict(options)})
        return trainer.run()


def check_crops(ws: Workspace, facesets: Iterable[tuple[str, Role]], trust: Trust) -> None:
    """A random sample of each faceset's crops (and any crop with no recorded hash) against its person's
    consent photos (train.data.check_likeness)."""
    sface, dlib = SFaceEncoder(), IdentityEncoder()
    for name, role in facesets:
        reference = consent_reference(ws, verified_consents(ws, name, role, trust=trust), sface)
        check_likeness(ws, name, reference, sface, dlib)


@contextlib.contextmanager
def model_lock(folder: Path) -> Iterator[None]:
    """Hold models/<name>/.lock for a training run: a second run of the same model is refused at once (two runs
    would interleave their checkpoints). A run refused before it wrote anything leaves no folder behind."""
    made = not folder.exists()
    with Lock(folder / LOCK, f"model {folder.name}",
              fix=f"wait for that run to finish (or stop it), or train under another --name than {folder.name}"):
        try:
            yield
        finally:
            if made and [p.name for p in folder.iterdir()] == [LOCK]:
                (folder / LOCK).unlink()
                with contextlib.suppress(OSError):  # another run made a file in it meanwhile: it stays
                    folder.rmdir()


def write_json(path: Path, value: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
