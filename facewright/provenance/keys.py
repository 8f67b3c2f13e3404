"""The signing identity: where it lives, loading it (making a local CA on first use), importing a user's own
chain, and verifying signatures. provenance.ca makes the local CA's root and leaf. Files in the keys folder:

    root.pem    root certificate (the trust anchor; give it to whoever verifies your files)
    root.key    root private key (absent for an imported identity)
    signer.pem  leaf certificate followed by the issuing chain: what C2PA signs with
    signer.key  leaf private key, PKCS8 PEM, unencrypted, mode 0600
    trusted.pem more roots trusted for consent records: earlier roots that `import` replaced, `keys trust` roots
    ledgers/    <workspace id>.json: the head of each workspace's consent ledger (provenance.ledger)

Keys are an identity, not a cache: they live under ~/.config, not ~/.cache, so cleaning caches keeps them.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from facewright.errors import FacewrightError, InputError, OutputError, ProvenanceError
from facewright.files import atomic_path, check_output, require_file
from facewright.provenance.ca import (
    ALGORITHMS,
    CLOCK_SKEW,
    EC_ALGS,
    PrivateKey,
    ec_digest,
    leaf_certificate,
    new_key,
    pem,
    pkcs8,
    root_certificate,
)
from facewright.provenance.trust import TRUSTED, Trust, check_anchor, keep_anchor, read_anchors

KEYS_ENV = "FACEWRIGHT_KEYS"
ROOT_CERT, ROOT_KEY, SIGNER_CERT, SIGNER_KEY, LOCK = "root.pem", "root.key", "signer.pem", "signer.key", ".lock"
# The fix for a damaged file of the keys folder itself; a bad file the user gave gets a fix about that file instead.
FRESH_FIX = "delete the keys folder to make a new local identity, or import a fresh chain (facewright keys import)"
CHAIN_FIX = "give the signing certificate followed by the CA certificate(s) that issued it, as PEM " \
            "(-----BEGIN CERTIFICATE-----)"
KEY_FIX = "give the signing certificate's private key as unencrypted PEM (openssl pkcs8 -topk8 -nocrypt)"
ANCHOR_FIX = "give a root CA certificate as PEM (-----BEGIN CERTIFICATE-----), e.g. the file that " \
             "`facewright keys export-anchor` writes"
PEM_LIMIT = 1 << 20  # bytes: a larger file is no certificate file, and is not read whole to find out

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def keys_dir() -> Path:
    """The keys folder: $FACEWRIGHT_KEYS, else $XDG_CONFIG_HOME/facewright/keys, else ~/.config/facewright/keys."""
    if override := os.environ.get(KEYS_ENV):
        return Path(override).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "facewright" / "keys"


@dataclass(frozen=True)
class SigningIdentity:
    """A private key and the certificate chain that vouches for it, as C2PA's signer takes them."""

    key_pem: bytes  # leaf private key, PKCS8 PEM
    chain_pem: bytes  # leaf certificate, then the issuing chain, PEM
    anchor_pem: bytes  # the root (trust anchor) certificate, PEM
    alg: str  # C2PA algorithm name: "es256" | "ed25519" (an imported key may also be "es384" | "es512")
    folder: Path

    def sign(self, data: bytes) -> bytes:
        """Raw signature of `data` with the leaf key (ES*: DER-encoded ECDSA; Ed25519: 64 bytes)."""
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(ec_digest(key.curve)))
        return key.sign(data)

    def _leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.chain_pem)

    @property
    def fingerprint(self) -> str:
        """sha256 hex of the leaf certificate's DER bytes."""
        return self._leaf().fingerprint(hashes.SHA256()).hex()

    @property
    def subject(self) -> str:
        """The leaf's subject as an RFC 4514 string."""
        return self._leaf().subject.rfc4514_string()

    @property
    def not_after(self) -> datetime:
        """When the leaf expires (UTC)."""
        return self._leaf().not_valid_after_utc


def load_identity(folder: Path | None = None, *, create: bool = True, alg: str = "es256",
                  display_name: str | None = None) -> SigningIdentity:
    """Load the identity in `folder` (default `keys_dir()`), making a new local CA there first if none exists.

    `alg` and `display_name` (the signer's name in every manifest; default ca.DEFAULT_SIGNER) apply only when a
    new identity is made; an existing one keeps its key's algorithm and its certificate's name.
    """
    folder = Path(folder) if folder is not None else keys_dir()
    if alg not in ALGORITHMS:
        raise ProvenanceError(f"unknown signing algorithm {alg!r}", fix=f"use one of {', '.join(ALGORITHMS)}")
    if not has_identity(folder):
        if not create:
            raise ProvenanceError("no signing identity here", path=folder,
                                  fix="run `facewright keys show`, which creates one")
        _make_folder(folder)
        with _folder_lock(folder):
            if not has_identity(folder):  # another process may have made it while we waited for the lock
                _write_local_ca(folder, alg, display_name)
    return _read_identity(folder)


def import_identity(chain: Path, key: Path, anchor: Path | None = None, folder: Path | None = None) -> SigningIdentity:
    """Copy a user's own chain (leaf first) and leaf key into the keys folder, after checking they can sign.

    Replaces any identity already in the folder. The anchor written as root.pem is `anchor` if given, else the
    last certificate of the chain; a root.key left by an earlier local identity is removed unless it belongs to
    the new anchor (it could otherwise issue leaves nobody meant to trust).
    """
    chain_path, key_path = require_file(chain), require_file(key)
    certs = _parse_chain(chain_path.read_bytes(), chain_path, given=CHAIN_FIX)
    private = _parse_key(key_path.read_bytes(), key_path, given=KEY_FIX)
    _check_signing_chain(certs, private, chain_path, key_path)
    anchor_cert = _anchor_for(certs, Path(anchor)) if anchor is not None else certs[-1]
    folder = Path(folder) if folder is not None else keys_dir()
    _make_folder(folder)
    with _folder_lock(folder):
        _keep_replaced_root(folder, anchor_cert)
        (folder / SIGNER_CERT).unlink(missing_ok=True)  # until the new one is written, readers see no identity
        _write_private(folder / SIGNER_KEY, pkcs8(private))
        with atomic_path(folder / ROOT_CERT) as tmp:
            tmp.write_bytes(pem(anchor_cert))
        _drop_stale_root_key(folder, anchor_cert)
        with atomic_path(folder / SIGNER_CERT) as tmp:  # written last: its presence marks a complete identity
            tmp.write_bytes(b"".join(pem(cert) for cert in certs))
    return _read_identity(folder)


def load_trust(folder: Path | None = None) -> Trust:
    """The anchors consent records are checked against (root.pem, then trusted.pem) in `folder` (default
    `keys_dir()`); none when no identity was ever made there."""
    folder = Path(folder) if folder is not None else keys_dir()
    root_path = folder / ROOT_CERT
    root = tuple(_parse_chain(root_path.read_bytes(), root_path)[:1]) if root_path.is_file() else ()
    return Trust(tuple(dict.fromkeys(root + read_anchors(folder / TRUSTED))), folder)


def read_anchor(path: Path) -> list[x509.Certificate]:
    """The CA certificates in `path`, a PEM file the user gave as a trust anchor (`keys trust`, `verify --anchor`);
    InputError naming it when it holds none, or a certificate that is not a CA."""
    path = require_file(path)
    return [check_anchor(cert, path) for cert in _parse_chain(path.read_bytes(), path, given=ANCHOR_FIX)]


def trust_anchor(root: Path, folder: Path | None = None) -> x509.Certificate:
    """Trust the CA certificate in `root` for consent records (another machine's or an organisation's root)."""
    cert = read_anchor(Path(root))[0]
    folder = Path(folder) if folder is not None else keys_dir()
    _make_folder(folder)
    with _folder_lock(folder):
        keep_anchor(folder, cert)
    return cert


def verify_signature(chain_pem: bytes, data: bytes, signature: bytes) -> bool:
    """True if `signature` over `data` verifies with the public key of the first (leaf) certificate."""
    public = _parse_chain(chain_pem, None)[0].public_key()
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(ec_digest(public.curve)))
        elif isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        else:
            raise ProvenanceError(f"unsupported public key type {type(public).__name__}")
    except InvalidSignature:
        return False
    return True


def export_anchor(destination: Path, folder: Path | None = None) -> Path:
    """Write a copy of the trust anchor (root.pem) to `destination`, atomically; return `destination`.

    OutputError for a folder, as for any output, and for an existing file other than a certificate file (an
    earlier export, replaced): a file the user keeps there is never overwritten.
    """
    folder = Path(folder) if folder is not None else keys_dir()
    if not (folder / ROOT_CERT).is_file():
        raise InputError("there is no signing identity to export the root of yet", path=folder,
                         fix="make one with: facewright keys show (or import yours with facewright keys import)")
    anchor = (folder / ROOT_CERT).read_bytes()
    _parse_chain(anchor, folder / ROOT_CERT)
    destination = check_output(destination, [folder / ROOT_CERT])
    if destination.exists() and not _replaceable(destination):
        raise OutputError("exists and is not a PEM certificate file; facewright does not overwrite it",
                          path=destination, fix="choose another path, or remove the file first")
    with atomic_path(destination) as tmp:
        tmp.write_bytes(anchor)
    return destination


def _replaceable(path: Path) -> bool:
    """Whether an existing `path` holds nothing to lose: empty, or PEM certificates only (an earlier export)."""
    try:
        size = path.stat().st_size
        return size == 0 or (size <= PEM_LIMIT and bool(x509.load_pem_x509_certificates(path.read_bytes())))
    except (OSError, ValueError):
        return False


# --- reading ---------------------------------------------------------------------------------------------


def has_identity(folder: Path | None = None) -> bool:
    """Whether a signing identity exists in `folder` (default `keys_dir()`), without making one."""
    folder = folder or keys_dir()
    return (folder / SIGNER_CERT).is_file() and (folder / SIGNER_KEY).is_file()


def _read_identity(folder: Path) -> SigningIdentity:
    """Read and check the identity files: permissions, parseable PEM, key matches leaf, leaf unexpired."""
    for name in (SIGNER_KEY, ROOT_KEY):
        _check_private_mode(folder / name)
    key_pem = (folder / SIGNER_KEY).read_bytes()
    chain_pem = (folder / SIGNER_CERT).read_bytes()
    certs = _parse_chain(chain_pem, folder / SIGNER_CERT)
    private = _parse_key(key_pem, folder / SIGNER_KEY)
    _check_key_matches(certs[0], private, folder / SIGNER_KEY)
    _check_unexpired(certs[0], folder / SIGNER_CERT)
    root_path = folder / ROOT_CERT
    anchor = _parse_chain(root_path.read_bytes(), root_path)[0] if root_path.is_file() else certs[-1]
    return SigningIdentity(key_pem=key_pem, chain_pem=chain_pem, anchor_pem=pem(anchor),
                           alg=_alg_of(private, folder / SIGNER_KEY), folder=folder)


def _check_private_mode(path: Path) -> None:
    """Refuse a private key that the group or other users can read (someone could sign as you)."""
    if not path.is_file():
        return
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ProvenanceError("private key is readable by other users", path=path, fix=f"chmod 600 {path}")


def _refusal(message: str, path: Path | None, given: str | None) -> FacewrightError:
    """The error for a bad certificate or key file. `given`: the fix when the user gave the file (import, trust,
    an anchor): bad input, an InputError; None for the keys folder's own file: a ProvenanceError whose fix is a
    fresh identity (deleting the keys folder is advice only for its own damage, never for a file the user gave)."""
    if given is not None:
        return InputError(message, path=path, fix=given)
    return ProvenanceError(message, path=path, fix=FRESH_FIX)


def _parse_chain(data: bytes, path: Path | None, *, given: str | None = None) -> list[x509.Certificate]:
    """All PEM certificates in `data`, in order; garbled or empty input is refused naming `path` (_refusal)."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise _refusal(f"not a readable PEM certificate file ({exc})", path, given) from exc
    if not certs:
        raise _refusal("holds no certificate", path, given)
    return certs


def _parse_key(data: bytes, path: Path, *, given: str | None = None) -> PrivateKey:
    """An unencrypted PEM private key of a type C2PA signs with (EC P-256/384/521 or Ed25519)."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise _refusal(f"not a readable, unencrypted PEM private key ({exc})", path, given) from exc
    _alg_of(key, path, given="use an EC P-256 (es256) or Ed25519 key" if given is not None else None)
    return key


def _alg_of(key: object, path: Path, *, given: str | None = None) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in EC_ALGS:
        return EC_ALGS[key.curve.name][0]
    raise _refusal(f"unsupported key type {type(key).__name__}", path, given)


def _public_der(key: PrivateKey | PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, PrivateKey) else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_key_matches(leaf: x509.Certificate, key: PrivateKey, key_path: Path, *, imported: bool = False) -> None:
    if _public_der(key) != _public_der(leaf.public_key()):
        raise _refusal("this private key does not belong to the first (leaf) certificate of the chain", key_path,
                       "give the key issued with that certificate" if imported else None)


def _check_unexpired(leaf: x509.Certificate, path: Path, *, imported: bool = False) -> None:
    now = datetime.now(UTC)
    if leaf.not_valid_after_utc <= now:
        raise _refusal(f"the signing certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}", path,
                       "ask your CA for a new certificate and import that" if imported else None)
    if leaf.not_valid_before_utc > now + CLOCK_SKEW:
        error = InputError if imported else ProvenanceError
        raise error(f"the signing certificate is not valid before {leaf.not_valid_before_utc:%Y-%m-%d}",
                    path=path, fix="check the system clock, or import a certificate valid today")


# --- checks on an imported chain --------------------------------------------------------------------------


def _check_signing_chain(certs: list[x509.Certificate], key: PrivateKey, chain: Path, key_path: Path) -> None:
    """A C2PA-usable chain: leaf + issuer(s), each signed by the next, leaf can sign, key matches, unexpired."""
    leaf = certs[0]
    if len(certs) == 1:
        lone = "a lone self-signed certificate" if leaf.issuer == leaf.subject else "only the leaf certificate"
        raise InputError(f"the chain holds {lone}; C2PA needs a CA-issued leaf followed by its issuer",
                         path=chain, fix="give the leaf certificate followed by the CA certificate(s) that "
                                         "issued it, or let facewright make a local CA (facewright keys show)")
    for child, issuer in zip(certs, certs[1:], strict=False):
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise InputError(f"{child.subject.rfc4514_string()} is not issued by the next certificate "
                             f"({issuer.subject.rfc4514_string()})", path=chain,
                             fix="order the chain leaf first, then each issuer") from exc
    _check_digital_signature(leaf, chain)
    _check_key_matches(leaf, key, key_path, imported=True)
    _check_unexpired(leaf, chain, imported=True)


def _anchor_for(certs: list[x509.Certificate], anchor: Path) -> x509.Certificate:
    """The anchor certificate in `anchor`, checked to be the chain's last certificate or its issuer."""
    cert = _parse_chain(require_file(anchor).read_bytes(), anchor, given=ANCHOR_FIX)[0]
    if cert == certs[-1]:
        return cert
    try:
        certs[-1].verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise InputError("this anchor did not issue the chain's last certificate", path=anchor,
                         fix="give the root CA certificate of this chain, or leave the anchor out") from exc
    return cert


def _check_digital_signature(leaf: x509.Certificate, path: Path) -> None:
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.digital_signature:
        raise InputError("the leaf certificate is not allowed to sign (no digitalSignature key usage)",
                         path=path, fix="ask your CA for a certificate with keyUsage digitalSignature")


def _keep_replaced_root(folder: Path, anchor: x509.Certificate) -> None:
    """Keep the root an import replaces in trusted.pem: consent records it signed stay valid."""
    root_path = folder / ROOT_CERT
    if root_path.is_file() and (old := _parse_chain(root_path.read_bytes(), root_path)[0]) != anchor:
        keep_anchor(folder, old)


def _drop_stale_root_key(folder: Path, anchor: x509.Certificate) -> None:
    """Remove a root.key that does not belong to the anchor now in root.pem (it would be a dangling secret)."""
    root_key = folder / ROOT_KEY
    if not root_key.is_file():
        return
    try:
        stale = _public_der(serialization.load_pem_private_key(root_key.read_bytes(), None)) != \
            _public_der(anchor.public_key())
    except (ValueError, TypeError):
        stale = True
    if stale:
        root_key.unlink()


# --- files --------------------------------------------------------------------------------------------------


def _write_local_ca(folder: Path, alg: str, display_name: str | None = None) -> None:
    """Make a root CA and a leaf it signs; write the four files, signer.pem last (it marks completion)."""
    now = datetime.now(UTC)
    root_key, leaf_key = new_key(alg), new_key(alg)
    root = root_certificate(root_key, now)
    leaf = leaf_certificate(leaf_key, root, root_key, now, display_name)
    _write_private(folder / ROOT_KEY, pkcs8(root_key))
    with atomic_path(folder / ROOT_CERT) as tmp:
        tmp.write_bytes(pem(root))
    _write_private(folder / SIGNER_KEY, pkcs8(leaf_key))
    with atomic_path(folder / SIGNER_CERT) as tmp:
        tmp.write_bytes(pem(leaf) + pem(root))


def _make_folder(folder: Path) -> None:
    """Create the keys folder as 0700 (an existing folder keeps its mode: the keys inside are 0600 anyway)."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ProvenanceError(f"cannot create the keys folder ({exc.strerror})", path=folder,
                              fix=f"set {KEYS_ENV} to a writable folder") from exc


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive flock on folder/.lock, so two processes never write an identity at once."""
    handle = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _write_private(final: Path, data: bytes) -> None:
    """Write secret bytes to `final` atomically; the temp file is 0600 from creation (no window for readers).

    Not `atomic_path`: it makes its temp file with a plain file's mode, and a chmod after it would leave a moment
    where another user could open the file.
    """
    while True:
        tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.partial")
        try:
            handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)

