"""Whose signatures count on consent records: trust anchors, and checking a signer's chain against them.

A valid signature proves a file is unchanged since it was signed, not who signed it: anyone can make a key and
re-sign a record. So consent records, revocations and ledger events verify only when the certificate chain they
carry leads to a trusted anchor: the keys folder's root.pem (this machine's signing root, or the root of an
imported organisation chain) or a root kept in trusted.pem beside it (roots of identities that `keys import`
replaced, so their records stay valid, and roots added with `keys trust`). The API loads the anchors once
(provenance.keys.load_trust) and passes them down; nothing here reads the environment.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from facewright.errors import InputError, ProvenanceError
from facewright.files import atomic_path

TRUSTED = "trusted.pem"  # in the keys folder: more roots whose signers are trusted for consent records
LEDGERS = "ledgers"  # in the keys folder: <workspace id>.json, the head of each workspace's consent ledger


@dataclass(frozen=True)
class Trust:
    """The roots whose chains are trusted, and the keys folder, which keeps the consent ledgers' heads."""

    anchors: tuple[x509.Certificate, ...]
    keys: Path

    @property
    def heads(self) -> Path:
        return self.keys / LEDGERS

    def trusts(self, chain_pem: bytes) -> bool:
        """Whether `chain_pem` (leaf first) is an unbroken chain that contains or is issued by an anchor."""
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
        except ValueError:
            return False
        if not all(_issued_by(child, issuer) for child, issuer in zip(chain, chain[1:], strict=False)):
            return False
        return any(cert in self.anchors for cert in chain) or any(_issued_by(chain[-1], a) for a in self.anchors)


@dataclass(frozen=True)
class Signer:
    """Who signed: the leaf certificate's subject and the sha256 of its DER bytes."""

    subject: str
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.subject} (certificate sha256 {self.fingerprint[:16]}...)"


def signer_of(chain_pem: bytes) -> Signer:
    """The leaf of a PEM chain as a Signer; an unreadable chain is named as such."""
    try:
        leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    except (ValueError, IndexError):
        return Signer("an unreadable certificate", "?" * 16)
    return Signer(leaf.subject.rfc4514_string(), leaf.fingerprint(hashes.SHA256()).hex())


def untrusted_fix(signer: Signer) -> str:
    """What to do about a file signed by someone outside the trust anchors."""
    return (f"if {signer.subject} is you on another machine or your organisation, trust its root: facewright keys "
            "trust ROOT.pem (made there with facewright keys export-anchor); otherwise restore the consent folder "
            "from a backup: a record signed by anyone else is never used")


def canonical_json(value: object) -> bytes:
    """The bytes a signature or a hash covers: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def read_anchors(path: Path) -> tuple[x509.Certificate, ...]:
    """The certificates in a PEM file; none if the file does not exist."""
    if not path.is_file():
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(path.read_bytes()))
    except ValueError as exc:
        raise ProvenanceError(f"not a readable PEM certificate file ({exc})", path=path,
                              fix="restore it from a backup, or delete it and trust the roots again (facewright keys "
                                  "trust ROOT.pem)") from exc


def check_anchor(cert: x509.Certificate, path: Path) -> x509.Certificate:
    """`cert` if it may anchor a chain: a CA certificate (a leaf trusted as a root could be anyone's); else an
    InputError naming `path`, the file the user gave it in."""
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise InputError("not a CA certificate: only a root (or intermediate) CA can be trusted", path=path,
                         fix="give the root certificate, e.g. the one facewright keys export-anchor writes")
    return cert


def keep_anchor(folder: Path, cert: x509.Certificate) -> bool:
    """Add `cert` to folder/trusted.pem unless it is there; True if added. The caller holds the keys folder lock."""
    kept = read_anchors(folder / TRUSTED)
    if cert in kept:
        return False
    with atomic_path(folder / TRUSTED) as tmp:
        tmp.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (*kept, cert)))
    return True


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """`issuer` is a CA whose key signed `child`."""
    try:
        if not issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
        child.verify_directly_issued_by(issuer)
    except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
        return False
    return True
