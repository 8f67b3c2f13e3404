"""Signed JSON: a payload's signature and the signer's certificate chain, written beside it and checked on reading.

Consent records, revocations and consent-ledger events are signed this way. Reading checks the signature with the
chain's leaf and then the chain against the trust anchors (provenance.trust): a file re-signed with a key of
someone else's making has a valid signature and an untrusted chain, and is refused naming that signer.
"""
from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

from facewright.errors import ConsentError, FacewrightError
from facewright.provenance.keys import SigningIdentity, verify_signature
from facewright.provenance.trust import Signer, Trust, canonical_json, signer_of, untrusted_fix


def seal(payload: object, signer: SigningIdentity) -> dict[str, str]:
    """{"signature": base64, "signer_chain": PEM, "alg": ...} over canonical_json(payload)."""
    return {"signature": base64.b64encode(signer.sign(canonical_json(payload))).decode("ascii"),
            "signer_chain": signer.chain_pem.decode("ascii"), "alg": signer.alg}


def check_seal(doc: Mapping, payload: object, trust: Trust, *, what: str, path: Path, fix: str,
               error: type[FacewrightError] = ConsentError) -> Signer:
    """Who signed `payload` with the seal fields of `doc`, or `error` naming `path`: unreadable, changed after
    signing (`fix` says what to do), or signed outside the trust anchors (the error names the signer)."""
    try:
        chain = doc["signer_chain"].encode("ascii")
        valid = verify_signature(chain, canonical_json(payload), base64.b64decode(doc["signature"], validate=True))
    except (ValueError, KeyError, TypeError, AttributeError, FacewrightError) as exc:
        raise error(f"unreadable signed {what} ({exc})", path=path, fix=fix) from exc
    if not valid:
        raise error(f"the {what}'s signature does not verify: it was changed after signing", path=path, fix=fix)
    signer = signer_of(chain)
    if not trust.trusts(chain):
        raise error(f"the {what} is signed by {signer}, a signer this machine does not trust: its certificate "
                    "chain leads neither to this machine's signing root nor to a root imported or trusted here",
                    path=path, fix=untrusted_fix(signer))
    return signer
