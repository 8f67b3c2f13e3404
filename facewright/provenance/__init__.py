"""Consent records and their enforcement, the consent ledger and the trusted signers it is checked against,
signing identity and local CA, C2PA manifests, invisible watermark, visible label, verification.

Every file facewright makes that shows a swapped face goes through `mark` (label + watermark + C2PA), and
every use of a face goes through `enforce.require_consent` first.
"""
