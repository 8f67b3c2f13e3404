"""The swap job: consent, faces found and chosen, the model run, post-processing, provenance, catalog.

A video takes two passes. The first decodes every frame, finds and tracks the faces shot by shot, and keeps
a few identity embeddings and crops per track. Then the tracks to swap are chosen (the target's consent
photo, a reference photo, or all), their people's consents are checked against those very faces, landmarks
are smoothed and per-track color statistics fitted. The second pass decodes again, renders every chosen
face, blends it in, labels and watermarks the frame and encodes it with the input's timestamps and audio;
the encoded file is signed (C2PA) last and only then appears at the output path.
"""
from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facewright.collect.tracks import stored_faces
from facewright.config import MarkOptions, SwapOptions, VideoOptions
from facewright.errors import ConsentError, NoFaceError, NoVideoStreamError
from facewright.faces.hands import HandTracker
from facewright.faces.identity import IdentityEncoder
from facewright.faces.landmarks import Landmarker
from facewright.faces.sface import SFaceEncoder
from facewright.faces.types import Points
from facewright.files import sha256_file, staging
from facewright.media.image import Frame, read_image
from facewright.media.kind import MediaKind, media_kind
from facewright.media.transcode import TranscodeResult, transcode
from facewright.media.video import StreamInfo, VideoFrame, probe, read_video
from facewright.prefetch import decoded_ahead, prefetch
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance.consent import ConsentRecord, Role, photo_embedding
from facewright.provenance.enforce import add_command, require_consent, verified_consents
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.label import Label
from facewright.provenance.likeness import Reference, consent_reference
from facewright.provenance.mark import FrameMarker, MarkPlan, MarkResult, mark_image, record_mark, seal
from facewright.provenance.trust import Trust
from facewright.swap.compose import Compositor, Prerendered, fit_track_colors
from facewright.swap.footage import FaceTrack, Footage, FootageScanner, faces_by_frame, select_tracks, sighted
from facewright.swap.identity import IdentityChecker, verdict
from facewright.swap.model import SwapModel
from facewright.swap.occlusion import Occlusion
from facewright.swap.patch import PatchWriter
from facewright.swap.rendered import INTERMEDIATE
from facewright.train.mask_model import MaskModel
from facewright.workspace import Run, Workspace

PREVIEW_WIDTH = 480  # each half of a preview strip row


@dataclass(frozen=True)
class SwapResult:
    input: Path
    output: Path
    kind: MediaKind
    frames: int
    frames_swapped: int  # frames where at least one face was replaced
    tracks_swapped: int
    tracks_seen: int
    seconds: float
    payload_hex: str  # the watermark id, also in the manifest and the catalog
    sha256: str
    preview: Path | None = None
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage
    input_frames: int | None = None  # video: the frames the input holds; `frames` is those that could be decoded
    corrupt_packets: int = 0  # video: damaged packets of the input, skipped
    untouched_frames: int = 0  # faces of chosen tracks not swapped: they did not pass their identity check
    notes: tuple[str, ...] = ()  # why, per track

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def frames_lost(self) -> int:
        """Input frames that could not be decoded, so are missing from the output (a damaged stream)."""
        return max(0, (self.input_frames or 0) - self.frames)


@dataclass
class SwapJob:
    """What every output of one `facewright swap` call shares."""

    ws: Workspace
    model: SwapModel
    options: SwapOptions
    marking: MarkOptions
    video: VideoOptions
    signer: SigningIdentity
    run: Run
    source_consent: ConsentRecord
    target: str
    extra: tuple[tuple[str, str], ...] = ()  # more manifest facts (a forced model)
    progress: ProgressFactory = no_progress
    # Watermark ids of the outputs in turn; None: random ones. Only `bench quality` sets them, in its own
    # throw-away workspace: the watermark moves pixels, and a fixed protocol must give the same pixels.
    payloads: Iterator[int] | None = None
    trust: Trust = field(kw_only=True)  # what the consents are checked against (provenance.trust)
    mask_model: MaskModel | None = field(default=None, kw_only=True)  # --mask occlusion's (swap.occlusion)
    hands: bool = field(default=False, kw_only=True)  # keep hands in front of the face
    notes: tuple[str, ...] = field(default=(), kw_only=True)  # said of every output (a mask model of another person)

    @functools.cached_property
    def encoder(self) -> IdentityEncoder:
        return IdentityEncoder()  # loaded once per call: a folder of images must not reload dlib per image

    @functools.cached_property
    def references(self) -> np.ndarray | None:
        """The embeddings that say which faces to swap (None: every face)."""
        if self.options.all_faces:
            return None
        if self.options.reference:
            path = Path(self.options.reference)
            return photo_embedding(read_image(path), path, self.encoder, None)[None]
        return require_consent(self.ws, self.target, Role.TARGET, trust=self.trust).embedding[None]

    @functools.cached_property
    def identity_reference(self) -> Reference:
        """The target as the per-frame identity checks know them: every active consent photo of theirs."""
        return consent_reference(self.ws, verified_consents(self.ws, self.target, Role.TARGET, trust=self.trust),
                                 self.sface)

    @functools.cached_property
    def sface(self) -> SFaceEncoder:
        return SFaceEncoder()

    def checker(self) -> IdentityChecker:
        """Fresh check positions for each input: they cannot be learned from one output and used on the next."""
        return IdentityChecker(self.identity_reference, self.sface, self.encoder)

    def occlusion(self, *, video: bool) -> Occlusion:
        """Fresh occluder sources for one input: the hand model tracks hands through one video at a time."""
        return Occlusion(HandTracker(video=video) if self.hands else None, self.mask_model,
                         self.options.mouth == "keep")

    def compositor(self, tracks: list[FaceTrack], occlusion: Occlusion) -> Compositor:
        return Compositor(self.model, self.options, fit_track_colors(self.model, tracks, self.options), occlusion)

    def plan(self, input: Path, target_consent: ConsentRecord) -> MarkPlan:
        return MarkPlan(Label(self.marking.label, self.marking.label_position),
                        (self.source_consent.id, target_consent.id), model=self.model.name,
                        model_sha256=self.model.sha256, parent=input, extra=self.extra,
                        names=self.marking.name_in_manifest,
                        **({"payload": next(self.payloads)} if self.payloads is not None else {}))

    def intermediate_plan(self, input: Path, target_consent: ConsentRecord) -> MarkPlan:
        """A render-only faces file's: watermarked and signed, unlabelled and said to be an intermediate
        (swap.rendered tells why); always a random watermark id (composite takes it off again)."""
        return MarkPlan(Label("none", self.marking.label_position), (self.source_consent.id, target_consent.id),
                        model=self.model.name, model_sha256=self.model.sha256, parent=input,
                        extra=(*self.extra, INTERMEDIATE), names=self.marking.name_in_manifest)

    def record(self, result: MarkResult, plan: MarkPlan) -> None:
        record_mark(self.ws, self.run.id, result, plan, self.signer.fingerprint)


@dataclass(frozen=True)
class Chosen:
    """What the swap of one input replaces: the tracks, the consent covering them, frame -> faces to render,
    and the frames left untouched because a face there did not pass its identity check."""

    tracks: list[FaceTrack]
    consent: ConsentRecord
    faces: dict[int, list[tuple[int, Points]]]
    untouched: int
    notes: tuple[str, ...]


def chosen_faces(job: SwapJob, footage: Footage, input: Path) -> Chosen:
    """The tracks to swap, checked frame by frame against the target's consent photos (identity.py)."""
    options = job.options
    tracks = select_tracks(footage, job.references, options.threshold)
    if not tracks:
        who = "the reference photo's face" if options.reference else f"{job.target}'s face"
        raise NoFaceError(f"none of the {len(footage.tracks)} face track(s) is {who}"
                          if footage.tracks else "no face found", path=input,
                          fix="check --target / --reference, raise --threshold a little, or use --all-faces")
    consent = require_consent(job.ws, job.target, Role.TARGET, trust=job.trust)
    # Track by track: pooled, a bystander's frames could hide among the many of a long target track.
    verdicts = {t.id: verdict(t.frames, t.checks) for t in tracks}
    for track in tracks:
        if verdicts[track.id].refused:
            raise ConsentError(f"the face of track {track.id} (frames {track.frames[0]}-{track.frames[-1]}) is "
                               f"not the person in the consent photo of {job.target!r}: "
                               f"{verdicts[track.id].describe()}; consent for one person does not cover another "
                               "person's images", path=input,
                               fix=f"use footage of {job.target} only, or record that person's own consent: "
                                   + add_command("IDENTITY", Role.TARGET))
    untouched = {t.id: verdicts[t.id].untouched for t in tracks}
    notes = tuple(f"track {t.id}: {len(verdicts[t.id].untouched)} frame(s) left untouched, the face there did not "
                  f"match the consent photo ({verdicts[t.id].describe()})" for t in tracks if verdicts[t.id].untouched)
    faces = faces_by_frame(tracks, options.smooth, options.smooth_beta, untouched)
    return Chosen(tracks, consent, faces, sum(len(u) for u in untouched.values()), notes)


@dataclass(frozen=True)
class ScannedVideo:
    """A video's first pass, shared by swap_video and render_only.render_video: its stream, its faces and tracks,
    the faces chosen to replace, and how long finding and checking them took."""

    video: StreamInfo
    footage: Footage
    chosen: Chosen
    checker: IdentityChecker
    seconds: float  # the scan, identity checks included

    def stages(self) -> dict[str, float]:
        return {"find faces": self.seconds - self.checker.seconds, "identity checks": self.checker.seconds}


def scan_video(job: SwapJob, input: Path, fix: str) -> ScannedVideo:
    """Probe `input` (no video stream: a typed error with `fix`), find and check its faces, choose the ones to
    replace."""
    start = time.perf_counter()
    video = probe(input).video
    if video is None:
        raise NoVideoStreamError("the file has no video stream (audio only?)", path=input, fix=fix)
    checker = job.checker()
    footage = scan_footage(job, input, video.frames, checker)
    seconds = time.perf_counter() - start
    return ScannedVideo(video, footage, chosen_faces(job, footage, input), checker, seconds)


def swap_video(job: SwapJob, input: Path, output: Path) -> SwapResult:
    start = time.perf_counter()
    scanned = scan_video(job, input, fix="give a video or an image")
    video, footage, chosen = scanned.video, scanned.footage, scanned.chosen
    plan = job.plan(input, chosen.consent)
    with contextlib.closing(job.occlusion(video=True)) as occlusion:
        compositor = job.compositor(chosen.tracks, occlusion)
        patch = (PatchWriter(Path(job.options.patch), video.fps or 30, video.time_base, job.video,
                             lambda: job.plan(input, chosen.consent), job.signer) if job.options.patch else None)
        render = FrameRenderer(compositor, chosen.faces, FrameMarker(plan, MediaKind.VIDEO),
                               preview_frames(footage.frames, job.options.preview), patch)
        encoded = _encode(job, input, output, render, plan)
    result = MarkResult.of(output, plan, MediaKind.VIDEO, encoded.frames, render.marker)
    job.record(result, plan)
    preview = write_preview(job, render.strip, output, input, chosen.consent) if render.strip else None
    seconds = time.perf_counter() - start
    stages = {**scanned.stages(), **compositor.timer.seconds}
    stages["decode, mark, encode, sign"] = seconds - sum(stages.values())
    return SwapResult(input, output, MediaKind.VIDEO, encoded.frames, len(chosen.faces), len(chosen.tracks),
                      len(footage.tracks), seconds, plan.payload_hex, result.sha256, preview, stages,
                      encoded.input_frames, encoded.corrupt_packets, chosen.untouched, job.notes + chosen.notes)


class FrameRenderer:
    """The second pass, one batch of decoded frames at a time: the chosen faces composited in, the patch
    (if any) fed, the preview's rows kept, and every frame labelled and watermarked."""

    def __init__(self, compositor: Compositor | Prerendered, faces: dict[int, list[tuple[int, Points]]],
                 marker: FrameMarker,
                 preview_frames: set[int], patch: PatchWriter | None):
        self.compositor, self.faces, self.marker, self.patch = compositor, faces, marker, patch
        self.preview_frames = preview_frames
        self.strip: list[tuple[Frame, Frame]] = []  # (input, output) rows of the preview

    def __call__(self, frames: list[VideoFrame]) -> list[Frame]:
        if self.patch is not None:
            patch = self.patch
            self.compositor.on_face = lambda i, track, *face: patch.add(frames[i], track, *face)
        swapped = self.compositor.many([f.image for f in frames], [self.faces.get(f.index, []) for f in frames],
                                       [f.time for f in frames])
        self.strip.extend((_fit_width(f.image), _fit_width(s)) for f, s in zip(frames, swapped, strict=True)
                          if f.index in self.preview_frames)
        return [self.marker(image) for image in swapped]


def _encode(job: SwapJob, input: Path, output: Path, render: FrameRenderer, plan: MarkPlan) -> TranscodeResult:
    """Decode, render and encode `input` with its timestamps and audio, then sign it into `output`.

    The output appears only when everything else is done (the patch, if any, included); an interruption
    leaves neither a partial output nor a partial patch.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    with staging(output, "swap") as tmp, contextlib.ExitStack() as cleanup:
        if render.patch is not None:
            cleanup.callback(render.patch.close)
        unsigned = tmp / f"unsigned{output.suffix.lower()}"
        encoded = transcode(input, unsigned, options=job.video, batch_fn=render, batch=job.options.batch,
                            progress=job.progress)
        for mark in render.patch.finish() if render.patch is not None else ():
            job.record(*mark)
        seal(unsigned, output, plan, job.signer)
    return encoded


def scan_footage(job: SwapJob, input: Path, frames: int | None, checker: IdentityChecker) -> Footage:
    """The first pass: faces in every frame, tracked shot by shot and checked against the consent photo. A
    video extracted `--for-swap` before has its landmarks in the workspace already: they are used instead of
    running the landmark model again (the identity checks run either way, on the pixels of this file)."""
    scanner = FootageScanner(job.encoder, job.model.resolution, job.model.face_type, job.options.cut_threshold,
                             checker)
    stored = stored_faces(job.ws, sha256_file(input))
    with contextlib.ExitStack() as stack:
        landmarker = None if stored else stack.enter_context(Landmarker(video=True, max_faces=job.options.max_faces))
        bar = stack.enter_context(job.progress(total=frames, desc=f"find faces {input.name}"
                                               + (" (stored)" if stored else ""), unit="frame"))
        # decoding ahead in a thread, the landmark model in another, the identity checks here; closed (the
        # threads stopped) before the landmarker
        found = stack.enter_context(contextlib.closing(prefetch(sighted(decoded_ahead(read_video(input)), landmarker,
                                                                        stored or None))))
        for frame, faces in found:
            scanner.add(frame.index, frame.time, frame.image, faces)
            bar.update(1)
    return scanner.footage()


def swap_image(job: SwapJob, input: Path, output: Path) -> SwapResult:
    start = time.perf_counter()
    image = read_image(input)
    checker = job.checker()
    scanner = FootageScanner(job.encoder, job.model.resolution, job.model.face_type, job.options.cut_threshold,
                             checker)
    with Landmarker(video=False, max_faces=job.options.max_faces) as landmarker:
        scanner.add(0, 0.0, image, landmarker.detect(image))
    footage = scanner.footage()
    chosen = chosen_faces(job, footage, input)
    with contextlib.closing(job.occlusion(video=False)) as occlusion:
        compositor = job.compositor(chosen.tracks, occlusion)
        swapped = compositor(image, chosen.faces.get(0, []))
    plan = job.plan(input, chosen.consent)
    mark_image(swapped, output, plan, job.signer)
    result = MarkResult.of(output, plan)
    job.record(result, plan)
    stages = {"identity checks": checker.seconds, **compositor.timer.seconds}
    return SwapResult(input, output, MediaKind.IMAGE, 1, len(chosen.faces), len(chosen.tracks), len(footage.tracks),
                      time.perf_counter() - start, plan.payload_hex, result.sha256, None, stages,
                      untouched_frames=chosen.untouched, notes=job.notes + chosen.notes)


def preview_frames(frames: int, count: int) -> set[int]:
    if count <= 0 or frames <= 0:
        return set()
    return {int(i) for i in np.linspace(0, frames - 1, min(count, frames)).round()}


def write_preview(job: SwapJob, pairs: list[tuple[Frame, Frame]], output: Path, input: Path,
                   consent: ConsentRecord) -> Path:
    """input | output rows as one PNG, itself labelled, watermarked and signed: it shows swapped faces."""
    rows = [np.concatenate([a, b], axis=1) for a, b in pairs]
    strip = np.concatenate(rows, axis=0)
    path = output.with_name(f"{output.stem}.preview.png")
    plan = job.plan(input, consent)
    mark_image(strip, path, plan, job.signer)
    job.record(MarkResult.of(path, plan), plan)
    return path


def _fit_width(image: Frame) -> Frame:
    height = max(2, round(image.shape[0] * PREVIEW_WIDTH / image.shape[1]))
    return cv2.resize(image, (PREVIEW_WIDTH, height), interpolation=cv2.INTER_AREA)


def image_files(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.iterdir()) if p.is_file() and media_kind(p) == MediaKind.IMAGE)

