"""Collecting faces: sources and sampling, quality scores, near-duplicates, identity filtering, facesets."""
