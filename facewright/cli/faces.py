"""Commands for face extraction and facesets."""
from __future__ import annotations

import argparse
import dataclasses

from facewright import api
from facewright.cli.common import Command, add_cluster, cluster_pool, group, positive_int
from facewright.collect.extract import ExtractReport
from facewright.config import ExtractOptions, add_options
from facewright.progress import terminal_progress


def register(commands: argparse._SubParsersAction, command: Command) -> None:
    sub = command("extract", cmd_extract, "extract aligned faces of one person from photos, folders, globs and "
                                          "videos into a faceset")
    sub.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, folders, or quoted globs")
    sub.add_argument("--identity", required=True, help="the person's name: the faceset is named after it")
    add_options(sub, ExtractOptions)
    add_cluster(sub)

    faceset_commands = group(commands, "faceset", "facesets: list, show, prune")
    command("list", cmd_faceset_list, "every faceset with its counts", faceset_commands)
    sub = command("show", cmd_faceset_show, "counts by reason, a contact sheet and a pose-coverage plot",
                  faceset_commands)
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--count", type=positive_int, default=48, help="faces on the contact sheet (default: 48)")
    sub = command("prune", cmd_faceset_prune, "sync the catalog after crops were deleted by hand; remove "
                                              "leftover files", faceset_commands)
    sub.add_argument("name", metavar="NAME")


def cmd_extract(args: argparse.Namespace) -> int:
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(ExtractOptions)}
    with cluster_pool(args) as pool:
        report = api.extract(args.inputs, args.identity, workspace=getattr(args, "workspace", None),
                             progress=terminal_progress, pool=pool, **options)
    print(format_extract(report))
    return 2 if any(s.error for s in report.inputs) else 0


def format_extract(report: ExtractReport) -> str:
    lines = [f"faceset {report.faceset}: {report.folder.resolve()}"]
    for s in report.inputs:
        if s.error:  # the error's own fix line goes under its file
            lines.append(f"  {s.path.name}: skipped, " + s.error.replace("\n", "\n  "))
        elif s.skipped:
            lines.append(f"  {s.path.name}: already extracted with these options")
        else:
            reasons = ", ".join(f"{n} {r}" for r, n in s.rejected.most_common()) or "none"
            corrupt = (f", {s.corrupt_frames} frames could not be decoded (damaged, or the file is cut short)"
                       if s.corrupt_frames else "")
            earlier = f", {s.kept_earlier} kept by an earlier run left kept" if s.kept_earlier else ""
            lines.append(f"  {s.path.name}: {s.frames_with_face}/{s.frames} frames with a face, kept {s.kept}, "
                         f"rejected: {reasons}{corrupt}{earlier}")
            lines += [f"    warning: {problem}" for problem in s.problems]
    if report.other_identities:
        lines.append(f"  other people found and rejected: {len(report.other_identities)} identities "
                     f"({', '.join(map(str, report.other_identities))} faces); use --reference to choose")
    lines.append(f"  faceset totals: {_counts(report.counts)}  ({report.seconds:.1f} s)")
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    kept = counts.get("kept", 0)
    rejected = ", ".join(f"{n} {r}" for r, n in counts.items() if r != "kept")
    return f"kept {kept}" + (f"; rejected: {rejected}" if rejected else "")


def cmd_faceset_list(args: argparse.Namespace) -> int:
    facesets = api.list_facesets(workspace=getattr(args, "workspace", None))
    for s in facesets:
        print(f"{s.name:<20} {s.face_type:<10} {s.size:>4} px  kept {s.kept:>6}  rejected {sum(s.rejected.values()):>6}"
              f"  files {len(s.inputs)}")
    if not facesets:
        print("no facesets yet: facewright extract SRC... --identity NAME")
    return 0


def cmd_faceset_show(args: argparse.Namespace) -> int:
    report = api.show_faceset(args.name, workspace=getattr(args, "workspace", None), count=args.count)
    print(format_faceset(report))
    return 0


def format_faceset(report: api.FacesetReport) -> str:
    s = report.summary
    lines = [f"faceset {s.name}: {s.face_type} crops of {s.size} px in {s.folder.resolve()}",
             f"  kept {s.kept}; rejected: " + (", ".join(f"{n} {r}" for r, n in s.rejected.items()) or "none")]
    lines += [f"  file {path}: {frames} frames looked at, {kept} faces kept" for path, frames, kept in s.inputs]
    lines += [f"  contact sheet: {report.sheet.resolve()}", f"  pose coverage: {report.poses.resolve()}"]
    return "\n".join(lines)


def cmd_faceset_prune(args: argparse.Namespace) -> int:
    result = api.prune_faceset(args.name, workspace=getattr(args, "workspace", None))
    print(f"faceset {args.name}: {result.missing_files} faces whose crop was deleted are now rejected "
          f"('removed by user'); {result.orphan_files} leftover files removed")
    return 0
