"""One `facewright score` run: resolve person A, score every frame, write the report folder.

The folder holds score.json (summary, worst frames, every frame), score.png (the measures over time) and,
when the scored file is this workspace's own output under consents that are still active, worst.png: input |
output face crops of the worst frames. That sheet shows swapped faces, so it is labelled, watermarked, signed
and recorded like any output; for a file without such a record it is not written (the JSON says why).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from facewright.config import ScoreOptions
from facewright.errors import FacewrightError, InputError
from facewright.faces.identity import IdentityEncoder
from facewright.faces.sface import SFaceEncoder
from facewright.files import require_file, sha256_file
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance.consent import ConsentStatus, get_consent, utc_today
from facewright.provenance.enforce import check_signed
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.label import Label
from facewright.provenance.mark import MarkPlan, MarkResult, mark_image, record_mark
from facewright.provenance.trust import Trust
from facewright.provenance.verify import CatalogLookup, verify_file
from facewright.score.frames import paired_frames
from facewright.score.report import ScoreReport, build_report, worst_sheet, write_json, write_plots
from facewright.score.scorer import score_frames
from facewright.score.source import Source, source_from_faceset, source_from_file
from facewright.workspace import Run, Workspace

REPORT_FILES = ("score.json", "score.png", "worst.png")


def resolve_source(ws: Workspace | None, source: str | Path, encoder: IdentityEncoder,
                   sface: SFaceEncoder) -> Source:
    """Person A: a faceset of the workspace by name, else a photo or video file of A."""
    person = source_from_faceset(ws, str(source), sface) if ws is not None else None
    if person is not None:
        return person
    if Path(source).is_file():
        return source_from_file(Path(source), encoder, sface)
    where = f"in the workspace {ws.root}" if ws is not None else "(no workspace here)"
    raise InputError(f"--source {source}: no faceset of that name {where} and no such file", path=Path(source),
                     fix="give the name of A's faceset (facewright faceset list) or a photo or video of A")


def run_score(ws: Workspace | None, output: str | Path, target: str | Path, source: str | Path,
              options: ScoreOptions, *, signer: SigningIdentity | None, trust: Trust | None = None,
              report_dir: str | Path | None = None, progress: ProgressFactory = no_progress) -> ScoreReport:
    """Score `output` (a swap) against `target` (the footage it was made from) with A = `source`.

    `signer` signs the worst frames' sheet, whose consents are checked against `trust`; without a workspace (or a
    signer and a trust) no sheet is written.
    """
    output, target = require_file(output), require_file(target)
    folder = Path(report_dir) if report_dir else output.with_name(f"{output.stem}.score")
    inputs = {output.resolve(), target.resolve(), Path(source).resolve()}
    clashes = [p for p in (folder, *(folder / name for name in REPORT_FILES)) if p.resolve() in inputs]
    if clashes:
        raise InputError(f"the report would overwrite an input: {clashes[0]}", path=folder,
                         fix="give --report a folder of its own")
    encoder, sface = IdentityEncoder(), SFaceEncoder()
    person_a = resolve_source(ws, source, encoder, sface)
    config = {"output": str(output), "target": str(target), "source": str(source), "samples": options.samples,
              "worst": options.worst}
    with ws.run("score", config) if ws else contextlib.nullcontext() as run:
        frames, label_seen = score_frames(output, target, person_a, samples=options.samples, encoder=encoder,
                                          sface=sface, progress=progress)
        report = build_report(output, target, person_a.description, frames, label_seen, options.worst)
        report.files["plots"] = str(write_plots(report, folder / "score.png"))
        if report.worst:
            _write_sheet(ws, run, signer, trust, report, folder / "worst.png")
        report.files["json"] = str(folder / "score.json")
        write_json(report, folder / "score.json")
    return report


def _write_sheet(ws: Workspace | None, run: Run | None, signer: SigningIdentity | None, trust: Trust | None,
                 report: ScoreReport, path: Path) -> None:
    """The worst frames' contact sheet, marked like any output, if the scored file has active consents."""
    plan, why_not = _sheet_plan(ws, signer, trust, report.output, report.target)
    if plan is None:
        report.notes.append(f"no contact sheet of the worst frames: {why_not}")
        return
    pairs, _, _ = paired_frames(report.output, report.target)
    sheet = worst_sheet(report.worst, ((index, out, ref) for index, _, out, ref in pairs))
    mark_image(sheet, path, plan, signer)
    record_mark(ws, run.id, MarkResult.of(path, plan), plan, signer.fingerprint)
    report.files["worst"] = str(path)


def _sheet_plan(ws: Workspace | None, signer: SigningIdentity | None, trust: Trust | None, output: Path,
                target: Path) -> tuple[MarkPlan | None, str]:
    """The mark plan of a sheet of `output`'s faces, or None and why not.

    The sheet shows faces of `output` and `target`, so it needs what the output itself had: `output` verified
    as this workspace's own file, byte for byte as recorded, made from `target`, under consents that are
    still active in their signed records.
    """
    if ws is None or signer is None or trust is None:
        return None, "there is no workspace to hold the consent records of the people shown"
    facts = verify_file(output, anchors_pem=signer.anchor_pem, lookup=CatalogLookup(ws))
    record = facts.record
    if record is None or not facts.consents:
        return None, f"{output.name} is not an output of this workspace with consent records ({facts.outcome})"
    if facts.outcome != "verified":
        return None, f"{output.name} does not verify ({facts.outcome}): it changed after it was made"
    if sha256_file(output) != record["sha256"]:
        return None, f"{output.name} differs from the file this workspace recorded under its watermark"
    if record.get("parent_sha256") and sha256_file(target) != record["parent_sha256"]:
        return None, f"{target.name} is not the footage {output.name} was made from"
    inactive = [f"{c.identity}: {c.status}" for c in facts.consents if c.status != ConsentStatus.ACTIVE]
    if inactive:
        return None, f"the consents behind {output.name} are no longer active ({', '.join(inactive)})"
    for status in facts.consents:
        try:
            check_signed(ws, get_consent(ws, status.consent_id), utc_today(), trust)
        except FacewrightError as exc:
            return None, f"the consent of {status.identity} behind {output.name} is not usable: {exc.message}"
    plan = MarkPlan(Label(facts.label if facts.label in ("ai-generated", "manipulated") else "ai-generated"),
                    tuple(c.consent_id for c in facts.consents), model=record.get("model"),
                    model_sha256=record.get("model_sha256"), parent=output,
                    extra=(("derived", "worst frames of a quality score"),))
    return plan, ""
