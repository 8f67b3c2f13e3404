"""The consent ledger: an append-only, hash-chained log of consent events, whose head is also kept with the keys.

`consents/ledger.jsonl` holds one event per line, for every consent added and revoked: its sequence number (from
1), kind, consent id, the sha256 of the file it covers (record.json or revocation.json, byte for byte), the time,
the workspace's random id (drawn when the ledger starts), the previous event's hash and its own hash (sha256 of the
canonical JSON of those fields), signed like the records (provenance.signed). Editing an event breaks its hash or
signature; deleting or inserting one breaks the chain. The head (last sequence number and hash, and the consents
the ledger revoked) is also written outside the workspace, to `<keys>/ledgers/<workspace id>-<folder key>.json`:
one per workspace folder, so a ledger shortened at the end or an older copy put back in place differs from the
head this machine recorded, and copies of a workspace on this machine each keep their own head. A copy (or a
moved workspace) whose ledger this machine knows by its workspace id gets its head on first use; a ledger from
elsewhere must be adopted (`consent adopt-ledger`). A consent revoked in any ledger this machine keeps a head of
stays revoked in every workspace here (`revocations_here`), so an older copy cannot bring it back. Writers hold
an exclusive lock on consents/.ledger.lock (readers a shared one), so two processes adding consents at once
append one after the other.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from facewright.errors import ConsentError
from facewright.files import atomic_path, sha256_file
from facewright.provenance.keys import SigningIdentity
from facewright.provenance.signed import check_seal, seal
from facewright.provenance.trust import Trust, canonical_json
from facewright.workspace import Workspace, now

LEDGER = Path("consents", "ledger.jsonl")  # in the workspace, beside the consent folders (provenance.consent)
LOCK = Path("consents", ".ledger.lock")
GENESIS = "0" * 64  # the `prev` of the first event
RESTORE_FIX = ("restore the workspace's consents/ folder (ledger.jsonl and the consent folders) from your newest "
               "backup; a consent ledger is never edited or shortened")


class EventKind(StrEnum):
    ADD = "add"
    REVOKE = "revoke"


@dataclass(frozen=True)
class Event:
    seq: int
    kind: EventKind
    consent_id: str
    sha256: str  # of the file the event covers: consents/<id>/record.json or revocation.json
    at: str  # UTC ISO 8601: when the consent was recorded or revoked
    workspace: str
    prev: str  # the previous event's hash (GENESIS for the first)
    hash: str  # sha256 of canonical_json(self.body())

    def body(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "hash"}


@dataclass(frozen=True)
class Ledger:
    workspace: str
    events: tuple[Event, ...]

    @classmethod
    def start(cls) -> Ledger:
        """A new, empty ledger under a random workspace id (random, so a copy keeps it and nothing else has it)."""
        return cls(secrets.token_hex(16), ())

    @property
    def seq(self) -> int:
        return len(self.events)

    def find(self, kind: EventKind, consent_id: str) -> Event | None:
        return next((e for e in self.events if e.kind == kind and e.consent_id == consent_id), None)


@dataclass(frozen=True)
class Head:
    """What this machine recorded of one workspace folder's ledger: its last event, and what it revoked."""

    workspace: str
    folder: str  # resolved; how a deleted ledger is told from one never made
    seq: int
    hash: str
    revoked: dict[str, str]  # consent id -> when, for every revocation in the ledger
    updated_at: str


def adopt_command(ws: Workspace) -> str:
    return f"facewright consent adopt-ledger --workspace {shlex.quote(str(ws.root))}"


# --- reading and checking --------------------------------------------------------------------------------------


def verified_ledger(ws: Workspace, trust: Trust) -> Ledger | None:
    """The workspace's ledger, its chain and signatures checked and its head equal to the one kept with the keys;
    None if the workspace has no ledger (the caller decides whether it needs one: see `missing_ledger`)."""
    with locked(ws, exclusive=False):
        ledger = read_ledger(ws, trust)
        if ledger is not None:
            check_head(ws, ledger, trust)
    return ledger


def read_ledger(ws: Workspace, trust: Trust) -> Ledger | None:
    """The ledger with its chain and signatures checked, not its head; None if there is no ledger file."""
    path = ws.root / LEDGER
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return None
    events: list[Event] = []
    for number, line in enumerate(lines, 1):
        events.append(_checked_event(line, number, events[-1] if events else None, trust, path))
    if not events:
        raise ConsentError("the consent ledger is empty: it was truncated", path=path, fix=RESTORE_FIX)
    return Ledger(events[0].workspace, tuple(events))


def _checked_event(line: bytes, number: int, previous: Event | None, trust: Trust, path: Path) -> Event:
    """Line `number` as an Event, after checking its hash, its place in the chain and its signature."""
    try:
        doc = json.loads(line)
        event = Event(**{k: doc[k] for k in Event.__dataclass_fields__} | {"kind": EventKind(doc["kind"])})
    except (ValueError, KeyError, TypeError) as exc:
        raise ConsentError(f"line {number} of the consent ledger is not a ledger event ({exc})", path=path,
                           fix=RESTORE_FIX) from exc
    if hashlib.sha256(canonical_json(event.body())).hexdigest() != event.hash:
        raise ConsentError(f"event {number} of the consent ledger was edited: its hash does not match its contents",
                           path=path, fix=RESTORE_FIX)
    expected = (previous.seq + 1, previous.hash, previous.workspace) if previous else (1, GENESIS, event.workspace)
    if (event.seq, event.prev, event.workspace) != expected:
        raise ConsentError(f"the consent ledger's chain is broken at line {number}: event {event.seq} does not follow "
                           f"the event before it (an event was deleted, inserted or edited)", path=path,
                           fix=RESTORE_FIX)
    check_seal(doc, event.body(), trust, what=f"consent ledger's event {event.seq}", path=path, fix=RESTORE_FIX)
    return event


def check_head(ws: Workspace, ledger: Ledger, trust: Trust) -> None:
    """ConsentError unless the ledger's last event is the head this machine recorded for the workspace folder.

    A folder without a head whose workspace id this machine knows (a copy made here, a moved workspace) gets
    one: the revocations kept with the keys still hold in it (see `revocations_here`).
    """
    head = stored_head(trust, ledger.workspace, ws.root)
    path = ws.root / LEDGER
    if head is None and any(h.workspace == ledger.workspace for h in all_heads(trust)):
        write_head(ws, ledger, trust)
        return
    if head is None:
        raise ConsentError(
            f"this machine keeps no head for this workspace's consent ledger of {ledger.seq} event(s) (no "
            f"{head_path(trust, ledger.workspace, ws.root)}): the workspace was copied or moved here from another "
            "machine, or the keys folder is new", path=path,
            fix=f"if you trust where this workspace came from, adopt its ledger: {adopt_command(ws)}")
    if head.seq == ledger.seq and head.hash == ledger.events[-1].hash:
        return
    if head.seq > ledger.seq:
        raise ConsentError(
            f"the consent ledger ends at event {ledger.seq}, but this machine recorded {head.seq} events for this "
            f"workspace (the last on {head.updated_at[:10]}): events were deleted from its end, or an older copy of "
            "the workspace was put back", path=path, fix=RESTORE_FIX)
    if head.seq < 1 or ledger.events[head.seq - 1].hash != head.hash:
        raise ConsentError(
            f"event {head.seq} of the consent ledger is not the one this machine recorded: the ledger was rewritten "
            "or replaced", path=path, fix=RESTORE_FIX)
    raise ConsentError(
        f"the consent ledger has {ledger.seq - head.seq} event(s) after event {head.seq}, the last this machine "
        "recorded: they were added in a copy of this workspace elsewhere, or a write was interrupted", path=path,
        fix=f"if you trust where those events came from, adopt the ledger: {adopt_command(ws)}")


def missing_ledger(ws: Workspace, trust: Trust) -> ConsentError:
    """The refusal for a workspace that has consents and no ledger: deleted (this machine recorded a ledger for
    this folder) or made before facewright kept one."""
    path = ws.root / LEDGER
    if known := head_of_folder(ws, trust):
        return ConsentError(f"the consent ledger is missing, though this machine recorded one with {known.seq} "
                            f"event(s) for this workspace (the last on {known.updated_at[:10]}): it was deleted",
                            path=path, fix=RESTORE_FIX)
    return ConsentError("this workspace has consents but no consent ledger: it was made before facewright kept one "
                        "(or the ledger was deleted)", path=path,
                        fix="if you trust its consent records as they are, build the ledger from them: "
                            + adopt_command(ws))


# --- writing ---------------------------------------------------------------------------------------------------


def append(ws: Workspace, kind: EventKind, consent_id: str, file: Path, at: str, *, signer: SigningIdentity,
           trust: Trust, may_start: bool) -> Event:
    """Add the event for `file` (a record.json or revocation.json just written) to the checked ledger, and move
    the head kept with the keys. `may_start`: no other consent exists, so a missing ledger is started here."""
    with locked(ws, exclusive=True):
        ledger = read_ledger(ws, trust)
        if ledger is None:
            if not may_start:
                raise missing_ledger(ws, trust)
            ledger = Ledger.start()
        else:
            check_head(ws, ledger, trust)
        return extend(ws, ledger, [(kind, consent_id, sha256_file(file), at)], signer, trust).events[-1]


def extend(ws: Workspace, ledger: Ledger, items: Iterable[tuple[EventKind, str, str, str]],
           signer: SigningIdentity, trust: Trust) -> Ledger:
    """Append (kind, consent id, sha256, time) events to `ledger`, the file and the head. Hold the exclusive lock."""
    events, lines = list(ledger.events), []
    for kind, consent_id, sha256, at in items:
        last = events[-1] if events else None
        body = {"seq": len(events) + 1, "kind": kind, "consent_id": consent_id, "sha256": sha256, "at": at,
                "workspace": ledger.workspace, "prev": last.hash if last else GENESIS}
        event = Event(**body, hash=hashlib.sha256(canonical_json(body)).hexdigest())
        events.append(event)
        lines.append(json.dumps({**body, "hash": event.hash, **seal(body, signer)}, sort_keys=True) + "\n")
    path = ws.root / LEDGER
    before = path.read_bytes() if ledger.events else b""  # byte for byte: earlier events are never rewritten
    with atomic_path(path, private=True) as tmp:  # beside the consent records: owner only, like them
        tmp.write_bytes(before + "".join(lines).encode("utf-8"))
    grown = Ledger(ledger.workspace, tuple(events))
    write_head(ws, grown, trust)
    return grown


def write_head(ws: Workspace, ledger: Ledger, trust: Trust) -> Path:
    """Record `ledger`'s last event and revocations as this machine's head for the workspace folder (atomically)."""
    revoked = {e.consent_id: e.at for e in ledger.events if e.kind == EventKind.REVOKE}
    head = Head(ledger.workspace, str(ws.root.resolve()), ledger.seq, ledger.events[-1].hash, revoked, now())
    path = head_path(trust, ledger.workspace, ws.root)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with atomic_path(path, private=True) as tmp:
        tmp.write_text(json.dumps(asdict(head), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def head_path(trust: Trust, workspace: str, folder: Path) -> Path:
    key = hashlib.sha256(str(Path(folder).resolve()).encode("utf-8")).hexdigest()[:16]
    return trust.heads / f"{workspace}-{key}.json"


def stored_head(trust: Trust, workspace: str, folder: Path) -> Head | None:
    return _read_head(head_path(trust, workspace, folder))


def all_heads(trust: Trust) -> list[Head]:
    """Every readable head this machine keeps (one per workspace folder that had a ledger here).

    Another workspace's unreadable head is skipped: it must not stop work in this one (this workspace's own
    head is read strictly, by `stored_head`).
    """
    paths = sorted(trust.heads.glob("*.json")) if trust.heads.is_dir() else []
    heads = []
    for path in paths:
        with contextlib.suppress(ConsentError):
            if (head := _read_head(path)) is not None:
                heads.append(head)
    return heads


def head_of_folder(ws: Workspace, trust: Trust) -> Head | None:
    """A head this machine keeps for a ledger in this workspace folder, whatever its workspace id."""
    return next((h for h in all_heads(trust) if h.folder == str(ws.root.resolve())), None)


def revocations_here(trust: Trust) -> dict[str, Head]:
    """consent id -> the head of a ledger that revoked it (the first by folder name, when several copies did),
    over every ledger this machine keeps a head of."""
    found: dict[str, Head] = {}
    for head in sorted(all_heads(trust), key=lambda h: h.folder):
        for consent_id in head.revoked:
            found.setdefault(consent_id, head)
    return found


def _read_head(path: Path) -> Head | None:
    try:
        return Head(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise ConsentError(f"unreadable consent-ledger head ({exc})", path=path,
                           fix="restore the keys folder from a backup") from exc


@contextlib.contextmanager
def locked(ws: Workspace, *, exclusive: bool = True) -> Iterator[None]:
    """Hold consents/.ledger.lock: exclusive to write the ledger, shared to read it (not needed before any consent
    folder exists: there is nothing to read)."""
    path = ws.root / LOCK
    if not exclusive and not path.parent.is_dir():
        yield
        return
    path.parent.mkdir(mode=0o700, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(handle)  # closing releases the lock
