"""Commands for the signing identity, consent records, marking and verification."""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from facewright import api
from facewright.cli.common import Command, group, report, warn_undecoded
from facewright.config import MarkOptions, VideoOptions, add_options
from facewright.progress import terminal_progress
from facewright.provenance.consent import ROLES, ConsentRecord
from facewright.provenance.fingerprint import Match
from facewright.provenance.verify import OUTCOMES, VerifyReport
from facewright.provenance.watermark import WatermarkResult


def register(commands: argparse._SubParsersAction, command: Command) -> None:
    _register_keys(commands, command)
    _register_consent(commands, command)
    _register_marking(command)


def _register_keys(commands: argparse._SubParsersAction, command: Command) -> None:
    key_commands = group(commands, "keys", "the signing identity: show, export-anchor, import",
                         "the local certificate authority and signing key used for C2PA")
    sub = command("show", cmd_keys_show, "show the signing certificate (made on first use)", key_commands)
    sub.add_argument("--name", help="when the keys are made now: the signer's name every manifest shows (default: "
                     "$FACEWRIGHT_SIGNER_NAME, else 'facewright local signer'; never your user or host name)")
    sub = command("export-anchor", cmd_keys_export_anchor, "write the root certificate, for others' trust lists",
                  key_commands)
    sub.add_argument("output", metavar="OUT.pem")
    sub = command("import", cmd_keys_import, "sign with your own certificate chain and key instead", key_commands)
    sub.add_argument("--chain", required=True, help="PEM: the signing certificate, then its issuers")
    sub.add_argument("--key", required=True, help="PEM: the signing certificate's private key")
    sub.add_argument("--anchor", help="PEM: the root to trust (default: the chain's last certificate)")
    sub = command("trust", cmd_keys_trust, "trust consent records signed under another root (yours elsewhere, your "
                  "organisation's)", key_commands)
    sub.add_argument("root", metavar="ROOT.pem", help="the root CA certificate (facewright keys export-anchor)")


def _register_consent(commands: argparse._SubParsersAction, command: Command) -> None:
    consent_commands = group(commands, "consent", "consent records: add, list, show, revoke",
                             "one consent per person whose face is used or replaced")
    sub = command("add", cmd_consent_add, "record a person's consent, bound to their face in a photo",
                  consent_commands)
    sub.add_argument("--identity", required=True, help="the person's identity name (their faceset's name)")
    sub.add_argument("--photo", required=True, help="a photo showing only this person's face")
    sub.add_argument("--role", required=True, choices=ROLES,
                     help="source: their face goes into other footage; target: their footage gets another face")
    sub.add_argument("--purpose", required=True, help="what the result is for, in plain words")
    sub.add_argument("--channels", required=True, help="where it may be shown, comma-separated")
    sub.add_argument("--expires", required=True, help="last valid day, YYYY-MM-DD")
    sub.add_argument("--display-name", help="name or pseudonym to show (default: the identity)")
    sub.add_argument("--release", help="the signed release document: only its sha256 is kept")
    sub.add_argument("--recorded-by", help="who recorded it (default: your user name)")
    sub.add_argument("--scope", default="", help="a free tag, e.g. a project name")
    sub = command("list", cmd_consent_list, "every consent with its status", consent_commands)
    sub.add_argument("--identity", help="only this person's")
    sub = command("show", cmd_consent_show, "one consent, checked against its signed record", consent_commands)
    sub.add_argument("consent_id", metavar="ID", help="the id or a unique prefix of at least 6 characters")
    sub.add_argument("--json", action="store_true", help="print JSON instead of text")
    sub = command("revoke", cmd_consent_revoke, "revoke a consent (recorded, never deleted)", consent_commands)
    sub.add_argument("consent_id", metavar="ID")
    sub.add_argument("--reason", required=True, help="why, in plain words")
    sub.add_argument("--by", help="who revokes it (default: your user name)")
    command("adopt-ledger", cmd_consent_adopt_ledger, "check this workspace's consent ledger and record its head "
            "with your keys (a workspace copied or moved here, or made before the ledger)", consent_commands)


def _register_marking(command: Command) -> None:
    sub = command("mark", cmd_mark, "label, watermark and C2PA-sign a copy of an image or video")
    sub.add_argument("input", metavar="IN")
    sub.add_argument("output", metavar="OUT", help=".mp4/.mov for videos, .png/.jpg for images")
    sub.add_argument("--consent", action="append", default=[], metavar="ID",
                     help="an active consent covering a person shown (repeat for each)")
    sub.add_argument("--model", help="name of the model that made the content, for the catalog (and the manifest "
                     "with --name-in-manifest)")
    add_options(sub, MarkOptions)
    add_options(sub, VideoOptions)

    sub = command("verify", cmd_verify, "report a file's provenance: C2PA manifest, watermark, catalog record, "
                                        "consent, label")
    sub.add_argument("files", nargs="+", metavar="FILE")
    sub.add_argument("--anchor", action="append", default=[], metavar="ROOT.pem",
                     help="another signer's root certificate to trust (ours is always trusted)")
    sub.add_argument("--json", action="store_true", help="print JSON instead of text")


def cmd_keys_show(args: argparse.Namespace) -> int:
    identity = api.keys_show(name=args.name)
    print(f"signer:      {identity.subject}\nalgorithm:   {identity.alg}\nfingerprint: {identity.fingerprint}\n"
          f"expires:     {identity.not_after:%Y-%m-%d}\nfolder:      {identity.folder}\n"
          "others can trust your signatures with: facewright keys export-anchor root.pem")
    return 0


def cmd_keys_export_anchor(args: argparse.Namespace) -> int:
    path = api.keys_export_anchor(args.output)
    print(f"root certificate written: {path}\n  others verify with: facewright verify FILE --anchor {path.name}")
    return 0


def cmd_keys_import(args: argparse.Namespace) -> int:
    identity = api.keys_import(args.chain, args.key, args.anchor)
    print(f"now signing as {identity.subject} (fingerprint {identity.fingerprint[:16]}...)")
    return 0


def cmd_keys_trust(args: argparse.Namespace) -> int:
    subject = api.keys_trust(args.root)
    print(f"consent records signed under {subject} are now trusted on this machine")
    return 0


def cmd_consent_adopt_ledger(args: argparse.Namespace) -> int:
    adopted = api.consent_adopt_ledger(workspace=getattr(args, "workspace", None))
    if adopted.head is None:
        print("no consents recorded in this workspace: there is no ledger to adopt")
    elif adopted.built:
        print(f"consent ledger built from the {adopted.events} signed consent event(s) of this workspace; "
              f"head recorded in {adopted.head}")
    else:
        more = f", {adopted.appended} revocation(s) added" if adopted.appended else ""
        print(f"consent ledger adopted: {adopted.events} event(s) checked{more}; head recorded in {adopted.head}")
    return 0


def cmd_consent_add(args: argparse.Namespace) -> int:
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    record = api.consent_add(args.identity, photo=args.photo, role=args.role, purpose=args.purpose,
                             channels=channels, expires=args.expires, display_name=args.display_name,
                             release=args.release, recorded_by=args.recorded_by, scope=args.scope,
                             workspace=getattr(args, "workspace", None))
    print(f"consent recorded: {record.id}\n" + format_consent(record))
    return 0


def cmd_consent_list(args: argparse.Namespace) -> int:
    records = api.consent_list(identity=args.identity, workspace=getattr(args, "workspace", None))
    for r in records:
        print(f"{r.id[:12]}  {r.identity:<16} {r.role:<6} {r.status():<8} expires {r.expires}  {r.display_name}")
    if not records:
        print("no consents recorded: facewright consent add --identity NAME --photo PHOTO --role ROLE ...")
    return 0


def cmd_consent_show(args: argparse.Namespace) -> int:
    record = api.consent_show(args.consent_id, workspace=getattr(args, "workspace", None))
    if args.json:
        print(json.dumps({**record.signed_fields(), "status": record.status(), "revoked_at": record.revoked_at,
                          "revoked_reason": record.revoked_reason}, indent=2))
    else:
        print(format_consent(record))
    return 0


def format_consent(r: ConsentRecord) -> str:
    lines = [f"  {r.display_name} (identity {r.identity}), role {r.role}, {r.status()}",
             f"  purpose: {r.purpose}", f"  channels: {', '.join(r.channels)}", f"  expires: {r.expires}",
             f"  photo: {r.photo} (sha256 {r.photo_sha256[:16]}...)",
             f"  release document sha256: {r.release_sha256 or 'none'}",
             f"  recorded by {r.recorded_by} at {r.recorded_at}" + (f", scope {r.scope}" if r.scope else "")]
    if r.revoked_at:
        lines.append(f"  REVOKED at {r.revoked_at} by {r.revoked_by}: {r.revoked_reason}")
    return "\n".join(lines)


def cmd_consent_revoke(args: argparse.Namespace) -> int:
    record = api.consent_revoke(args.consent_id, reason=args.reason, by=args.by,
                                workspace=getattr(args, "workspace", None))
    print(f"consent {record.id} revoked; it stays on record and no longer allows any use")
    return 0


def cmd_mark(args: argparse.Namespace) -> int:
    options = {f.name: getattr(args, f.name) for schema in (MarkOptions, VideoOptions)
               for f in dataclasses.fields(schema)}
    result = api.mark(args.input, args.output, consent=args.consent, model=args.model,
                      workspace=getattr(args, "workspace", None), progress=terminal_progress, **options)
    print(f"marked {result.kind}: {result.output.resolve()}\n  label {result.label}, watermark payload "
          f"{result.payload_hex}, C2PA signed, {result.frames} frame(s), sha256 {result.sha256[:16]}...")
    warn_undecoded(Path(args.input), result)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    results = api.verify(args.files, anchors=args.anchor, workspace=getattr(args, "workspace", None))
    worst = 0
    for result in results:
        if isinstance(result, Exception):
            worst = max(worst, report(result, getattr(args, "debug", False)))
            continue
        print(json.dumps(result.to_dict()) if args.json else format_verify(result))
        worst = max(worst, result.exit_code)
    return worst


def _geometry(mark: WatermarkResult) -> str:
    """How the copy in hand was turned or resized since it was marked, as the watermark's pattern shows it."""
    changes = ["mirrored" if mark.mirrored else "",
               f"rotated {mark.rotation:+.1f} degrees" if abs(mark.rotation) >= 0.5 else "",
               f"scaled {mark.scale:.2f}x" if abs(mark.scale - 1) >= 0.02 else ""]
    changes = [c for c in changes if c]
    return f" (the copy is {', '.join(changes)})" if changes else ""


def format_verify(r: VerifyReport) -> str:
    c2pa = r.c2pa
    lines = [f"{r.path}: {r.outcome.upper()} (exit {OUTCOMES[r.outcome]})",
             f"  C2PA manifest: {c2pa.state}" + (f" [{', '.join(c2pa.codes)}]" if c2pa.codes else "")
             + (f", signed by {c2pa.signer}" if c2pa.signer else "")]
    if c2pa.certificate is not None and not c2pa.trusted:  # a name anyone can copy: show what tells them apart
        cert = c2pa.certificate
        lines.append(f"  signing certificate: {cert.subject}, issued by {cert.issuer}, serial {cert.serial} (no "
                     "trusted root issued it)")
    if c2pa.foreign:
        lines.append(f"  made by: {c2pa.generator or 'unnamed generator'} (another tool's manifest: no facewright "
                     "assertion)")
    mark = r.watermark
    if mark is not None and mark.found:
        lines.append(f"  watermark: found, payload {mark.payload_hex}, bit accuracy {mark.bit_accuracy:.3f}, "
                     f"p-value {mark.p_value:.1e} over {mark.frames} frame(s){_geometry(mark)}")
    else:
        lines.append("  watermark: not found" + (f" (p-value {mark.p_value:.2f})" if mark else ""))
    if r.record:
        lines.append(f"  catalog: output {r.record['path']} made {r.record['created_at']} by run "
                     f"{r.record['run_id']}" + (f", model {r.record['model']}" if r.record.get("model") else ""))
    if r.content is not None:
        lines.append(f"  content: {_content(r.content)}")
    for c in r.consents:
        lines.append(f"  consent {c.consent_id[:12]} ({c.identity}, {c.role}): {c.status}"
                     + ("" if c.in_manifest else " (not in the manifest)"))
    lines.append(f"  visible label: {r.label or 'unknown (no manifest or record)'}")
    lines += [f"  note: {note}" for note in r.notes]
    return "\n".join(lines)


def _content(match: Match) -> str:
    if match.score is None:
        return "cannot tell whether it is the recorded output's (nothing detailed enough to compare)"
    figures = f"fingerprint score {match.score:.3f} over {match.frames} frame(s)"
    if match.verdict == "same":
        return f"the recorded output's ({figures}, {match.pose.describe()})"
    if match.verdict == "different":
        return f"NOT the recorded output's: the watermark was copied ({figures})"
    return f"cannot tell whether it is the recorded output's ({figures})"
