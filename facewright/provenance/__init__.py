"""Consent records, signing identity, C2PA manifests, invisible watermark, visible label, verification.

Every file facewright makes that shows a swapped face goes through `mark` (label + watermark + C2PA), and
every use of a face goes through `consent.require_consent` first.
"""
