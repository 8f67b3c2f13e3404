"""The local signing identity: files, permissions, chain structure, signatures, import and refusal paths."""
from __future__ import annotations

import multiprocessing
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from facewright.errors import InputError, ProvenanceError
from facewright.provenance.ca import leaf_certificate, pem, pkcs8, root_certificate
from facewright.provenance.keys import (
    KEYS_ENV,
    SigningIdentity,
    export_anchor,
    import_identity,
    keys_dir,
    load_identity,
    verify_signature,
)


@pytest.fixture
def keys_env(tmp_path, monkeypatch) -> Path:
    """A fresh, not yet existing keys folder named by $FACEWRIGHT_KEYS (the real ~/.config is never touched)."""
    folder = tmp_path / "keys"
    monkeypatch.setenv(KEYS_ENV, str(folder))
    return folder


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def chain_of(identity: SigningIdentity) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(identity.chain_pem)


def test_keys_dir_env_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv(KEYS_ENV, str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert keys_dir() == tmp_path / "explicit"
    monkeypatch.delenv(KEYS_ENV)
    assert keys_dir() == tmp_path / "xdg" / "facewright" / "keys"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert keys_dir() == tmp_path / "home" / ".config" / "facewright" / "keys"


def test_first_use_creates_private_files_even_with_umask_0(keys_env):
    old = os.umask(0)  # a plain open would now give 0666: only an explicit 0600 keeps keys private
    try:
        identity = load_identity()
    finally:
        os.umask(old)
    assert identity.folder == keys_env
    for name in ("root.pem", "root.key", "signer.pem", "signer.key"):
        assert (keys_env / name).is_file()
    assert mode(keys_env / "signer.key") == 0o600
    assert mode(keys_env / "root.key") == 0o600
    assert mode(keys_env) == 0o700
    assert not [p for p in keys_env.iterdir() if "partial" in p.name]  # no temp files left


def test_second_load_returns_the_same_identity(keys_env):
    first = load_identity()
    again = load_identity(create=False)
    assert again.fingerprint == first.fingerprint
    assert again.key_pem == first.key_pem
    assert first.fingerprint == chain_of(first)[0].fingerprint(hashes.SHA256()).hex()


def test_missing_identity_without_create_points_to_keys_show(keys_env):
    with pytest.raises(ProvenanceError) as caught:
        load_identity(create=False)
    assert "facewright keys show" in caught.value.fix
    assert not keys_env.exists()


def test_chain_is_a_root_ca_and_a_leaf_it_signed(keys_env):
    identity = load_identity()
    leaf, root = chain_of(identity)
    assert x509.load_pem_x509_certificate(identity.anchor_pem) == root
    assert (keys_env / "root.pem").read_bytes() == identity.anchor_pem
    leaf.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)

    root_bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert root_bc.critical and root_bc.value.ca
    root_ku = root.extensions.get_extension_for_class(x509.KeyUsage).value
    assert root_ku.key_cert_sign and root_ku.crl_sign
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value

    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf_ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert leaf_ku.critical and leaf_ku.value.digital_signature and not leaf_ku.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == root_ski.digest

    now = datetime.now(UTC)
    assert timedelta(days=3640) < root.not_valid_after_utc - now < timedelta(days=3660)
    assert timedelta(days=725) < identity.not_after - now < timedelta(days=735)
    assert identity.not_after == leaf.not_valid_after_utc
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "facewright local signer"
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "facewright local root CA"
    assert "@" not in identity.subject  # no user@host: the signer's name travels in every manifest
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "facewright (local, self-issued)"


@pytest.mark.parametrize("alg, key_type", [("es256", ec.EllipticCurvePrivateKey),
                                           ("ed25519", ed25519.Ed25519PrivateKey)])
def test_sign_and_verify_round_trip(keys_env, alg, key_type):
    identity = load_identity(alg=alg)
    assert identity.alg == alg
    assert isinstance(serialization.load_pem_private_key(identity.key_pem, None), key_type)
    data = b"frame bytes \x00\x01" * 10
    signature = identity.sign(data)
    assert verify_signature(identity.chain_pem, data, signature)
    flipped = bytearray(signature)
    flipped[len(flipped) // 2] ^= 0x01
    assert not verify_signature(identity.chain_pem, data, bytes(flipped))
    assert not verify_signature(identity.chain_pem, data + b"!", signature)


def test_existing_identity_keeps_its_algorithm(keys_env):
    load_identity(alg="ed25519")
    assert load_identity(alg="es256").alg == "ed25519"


def test_unknown_algorithm_refused(keys_env):
    with pytest.raises(ProvenanceError, match="unknown signing algorithm"):
        load_identity(alg="rsa")


def _create_in(folder: str, queue) -> None:
    queue.put(load_identity(Path(folder)).fingerprint)


def test_two_processes_creating_at_once_share_one_identity(keys_env):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_create_in, args=(str(keys_env), queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=20)
        assert worker.exitcode == 0
    fingerprints = {queue.get(timeout=5) for _ in workers}
    assert fingerprints == {load_identity(create=False).fingerprint}


def test_group_readable_key_is_refused(keys_env):
    load_identity()
    os.chmod(keys_env / "signer.key", 0o644)
    with pytest.raises(ProvenanceError) as caught:
        load_identity()
    assert caught.value.path == keys_env / "signer.key"
    assert caught.value.fix == f"chmod 600 {keys_env / 'signer.key'}"


def test_garbled_key_file_is_refused(keys_env):
    load_identity()
    (keys_env / "signer.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ProvenanceError, match="private key") as caught:
        load_identity()
    assert caught.value.path == keys_env / "signer.key"


def test_garbled_certificate_is_refused(keys_env):
    load_identity()
    (keys_env / "signer.pem").write_text("hello")
    with pytest.raises(ProvenanceError) as caught:
        load_identity()
    assert caught.value.path == keys_env / "signer.pem"


def test_import_our_own_chain(tmp_path, keys_env):
    source = load_identity(tmp_path / "org")
    imported = import_identity(source.folder / "signer.pem", source.folder / "signer.key",
                               anchor=source.folder / "root.pem")
    assert imported.folder == keys_env
    assert imported.fingerprint == source.fingerprint
    assert imported.anchor_pem == source.anchor_pem
    assert mode(keys_env / "signer.key") == 0o600
    assert not (keys_env / "root.key").exists()  # an imported identity has no root key
    assert load_identity(create=False).fingerprint == source.fingerprint
    data = b"payload"
    assert verify_signature(source.chain_pem, data, imported.sign(data))


def test_import_takes_the_last_chain_cert_as_anchor(tmp_path):
    source = load_identity(tmp_path / "org")
    imported = import_identity(source.folder / "signer.pem", source.folder / "signer.key", folder=tmp_path / "b")
    assert imported.anchor_pem == source.anchor_pem


def test_import_replaces_a_local_identity_and_its_stale_root_key(tmp_path, keys_env):
    load_identity()
    source = load_identity(tmp_path / "org")
    import_identity(source.folder / "signer.pem", source.folder / "signer.key")
    assert not (keys_env / "root.key").exists()
    assert load_identity().fingerprint == source.fingerprint


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lonely")])
    now = datetime.now(UTC)
    usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(usage, critical=True).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "lonely.pem", tmp_path / "lonely.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_import_refuses_a_lone_self_signed_certificate(tmp_path, keys_env):
    cert, key = _self_signed(tmp_path)
    with pytest.raises(InputError, match="self-signed.*C2PA needs a CA-issued leaf") as caught:
        import_identity(cert, key)
    assert caught.value.path == cert
    assert not keys_env.exists()


def test_import_refuses_a_key_of_another_certificate(tmp_path, keys_env):
    source = load_identity(tmp_path / "org")
    other = load_identity(tmp_path / "other")
    with pytest.raises(InputError, match="does not belong") as caught:
        import_identity(source.folder / "signer.pem", other.folder / "signer.key")
    assert caught.value.path == other.folder / "signer.key" and "delete the keys folder" not in caught.value.fix


def test_import_refuses_an_unrelated_anchor(tmp_path, keys_env):
    source = load_identity(tmp_path / "org")
    other = load_identity(tmp_path / "other")
    with pytest.raises(InputError, match="did not issue"):
        import_identity(source.folder / "signer.pem", source.folder / "signer.key", anchor=other.folder / "root.pem")


def _write_expired_chain(folder: Path) -> None:
    """A local CA made three years ago: its two-year leaf has expired."""
    then = datetime.now(UTC) - timedelta(days=3 * 365)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = root_certificate(root_key, then)
    leaf = leaf_certificate(leaf_key, root, root_key, then)
    folder.mkdir(mode=0o700)
    (folder / "signer.pem").write_bytes(pem(leaf) + pem(root))
    (folder / "signer.key").write_bytes(pkcs8(leaf_key))
    os.chmod(folder / "signer.key", 0o600)


def test_import_a_p384_chain_signs_as_es384(tmp_path, keys_env):
    """An organisation CA often issues P-384: it loads as es384 and signs with SHA-384."""
    now = datetime.now(UTC)
    root_key, leaf_key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    root = root_certificate(root_key, now)
    leaf = leaf_certificate(leaf_key, root, root_key, now)
    (tmp_path / "chain.pem").write_bytes(pem(leaf) + pem(root))
    (tmp_path / "leaf.key").write_bytes(pkcs8(leaf_key))
    identity = import_identity(tmp_path / "chain.pem", tmp_path / "leaf.key")
    assert identity.alg == "es384"
    signature = identity.sign(b"data")
    leaf_key.public_key().verify(signature, b"data", ec.ECDSA(hashes.SHA384()))
    assert verify_signature(identity.chain_pem, b"data", signature)


def test_expired_leaf_is_refused_on_load_and_import(tmp_path, keys_env):
    _write_expired_chain(tmp_path / "old")
    with pytest.raises(ProvenanceError, match="expired") as caught:
        load_identity(tmp_path / "old")
    assert "delete the keys folder" in caught.value.fix
    with pytest.raises(InputError, match="expired") as caught:  # the user's file: not the keys folder's damage
        import_identity(tmp_path / "old" / "signer.pem", tmp_path / "old" / "signer.key")
    assert "delete the keys folder" not in caught.value.fix


def test_export_anchor_writes_the_root(tmp_path, keys_env):
    identity = load_identity()
    written = export_anchor(tmp_path / "out" / "facewright-root.pem")
    assert written == tmp_path / "out" / "facewright-root.pem"
    assert written.read_bytes() == identity.anchor_pem == (keys_env / "root.pem").read_bytes()
