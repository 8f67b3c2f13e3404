"""A local certificate authority: new keys, a root CA certificate and a leaf certificate it signs, as PEM.

C2PA refuses a lone self-signed certificate, so facewright makes two: a root (the trust anchor a verifier adds)
and a leaf signed by it (the one that signs manifests). Also the signing algorithms facewright knows, which
provenance.keys uses to load, sign and verify. Nothing here touches files; provenance.keys writes them.
"""
from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from facewright.errors import OptionError

ALGORITHMS = ("es256", "ed25519")  # what we generate; an imported P-384/P-521 key also loads (es384/es512)
ROOT_DAYS = 3652  # 10 years: the anchor others pin should outlive many leaves
LEAF_DAYS = 730  # 2 years: a leaked leaf stops being usable on its own
CLOCK_SKEW = timedelta(minutes=5)  # backdate notBefore so a verifier whose clock lags still accepts a new cert
ORGANISATION = "facewright (local, self-issued)"
# What verifiers show as the signer (the leaf's common name) unless a display name is chosen when keys are made.
# Generic on purpose: the user and host names it once held ("alice@alices-laptop") travel in every manifest.
DEFAULT_SIGNER = "facewright local signer"
ROOT_NAME = "facewright local root CA"
MAX_CN = 64  # X.520 caps a common name at 64 characters

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
# EC curve -> (C2PA algorithm name, digest the signature uses)
EC_ALGS: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "secp256r1": ("es256", hashes.SHA256),
    "secp384r1": ("es384", hashes.SHA384),
    "secp521r1": ("es512", hashes.SHA512),
}


def ec_digest(curve: ec.EllipticCurve) -> hashes.HashAlgorithm:
    """The digest an ECDSA signature on `curve` uses (SHA-256 for P-256, and so on)."""
    return EC_ALGS[curve.name][1]()


def new_key(alg: str) -> PrivateKey:
    """A fresh private key: P-256 for "es256", else Ed25519."""
    return ec.generate_private_key(ec.SECP256R1()) if alg == "es256" else ed25519.Ed25519PrivateKey.generate()


def root_certificate(key: PrivateKey, now: datetime) -> x509.Certificate:
    """A self-signed CA certificate for `key`, valid ROOT_DAYS from `now` (UTC), backdated by CLOCK_SKEW."""
    name = _name(ROOT_NAME)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + timedelta(days=ROOT_DAYS))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    return _sign_cert(builder, key)


def leaf_certificate(key: PrivateKey, root: x509.Certificate, root_key: PrivateKey, now: datetime,
                     display_name: str | None = None) -> x509.Certificate:
    """A signing (non-CA) certificate for `key`, issued by `root`, valid LEAF_DAYS from `now` (UTC).

    `display_name`: the signer's name as verifiers show it (check_display_name); default DEFAULT_SIGNER.
    """
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    # C2PA's certificate profile wants an EKU; emailProtection is one it accepts for claim signers
    subject = _name(check_display_name(display_name) if display_name is not None else DEFAULT_SIGNER)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(root.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + timedelta(days=LEAF_DAYS))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_key_usage(digital_signature=True), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
                              critical=False))
    return _sign_cert(builder, root_key)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pkcs8(key: PrivateKey) -> bytes:
    """`key` as unencrypted PKCS8 PEM (the file that holds it must be private)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def check_display_name(name: str) -> str:
    """A signer display name, stripped: 1 to MAX_CN printable characters; else OptionError."""
    text = name.strip()
    if not 0 < len(text) <= MAX_CN or any(unicodedata.category(c)[0] == "C" for c in text):
        raise OptionError(f"signer display name {name[:MAX_CN]!r} must be 1 to {MAX_CN} printable characters",
                          fix='e.g. --name "Studio X"')
    return text


def common_name(cert_pem: bytes) -> str:
    """The common name of the first certificate in `cert_pem` ("" if it has none)."""
    names = x509.load_pem_x509_certificate(cert_pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _name(common: str) -> x509.Name:
    """A subject of `common` and our organisation, and nothing else: no user, no host."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION)])


def _sign_cert(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    digest = ec_digest(key.curve) if isinstance(key, ec.EllipticCurvePrivateKey) else None  # Ed25519 hashes itself
    return builder.sign(key, digest)


def _key_usage(**allowed: bool) -> x509.KeyUsage:
    """A KeyUsage with only the `allowed` flags set."""
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**(dict.fromkeys(names, False) | allowed))
