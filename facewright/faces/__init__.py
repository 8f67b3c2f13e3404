"""Faces: detection, landmarks, alignment, masks, identity and tracking, each in its own module."""
