"""Shared fixtures for consent records and their enforcement: real faces, models and a fresh workspace.

One man (single_face.mp4) gives consent; a woman (WolfgangLanger_Pexels.mp4) is another person. Models and
embeddings are made once for the package.
"""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from facewright.faces.detect import create_detector
from facewright.faces.identity import IdentityEncoder
from facewright.media.image import write_image
from facewright.media.video import VideoReader
from facewright.provenance.consent import DETECTOR, add_consent, utc_today
from facewright.provenance.keys import load_identity, load_trust
from facewright.workspace import Workspace

PURPOSE = "short film for a student festival"


@pytest.fixture(scope="package")
def models():
    with create_detector(DETECTOR) as detector:
        yield IdentityEncoder(), detector


def _frames(path, every: int, count: int) -> list[np.ndarray]:
    with VideoReader(path) as reader:
        return [f.image for f in reader if f.index % every == 0][:count]


def _embed(models, images) -> np.ndarray:
    encoder, detector = models
    return np.stack([encoder.embed(image, detector.detect(image)[0]) for image in images])


@pytest.fixture(scope="package")
def man(sample, models, tmp_path_factory):
    """(consent photo: frame 0 as PNG, embeddings of 7 later frames of the same man)."""
    frames = _frames(sample("single_face.mp4"), every=10, count=8)
    photo = write_image(frames[0], tmp_path_factory.mktemp("photos") / "man.png")
    return photo, _embed(models, frames[1:])


@pytest.fixture(scope="package")
def woman(sample, models):
    """Embeddings of 6 frames of another person."""
    return _embed(models, _frames(sample("WolfgangLanger_Pexels.mp4"), every=40, count=6))


@pytest.fixture
def trust(ws):
    """The test's trust anchors and ledger heads (its keys folder), the signing identity made first."""
    load_identity()
    return load_trust()


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEWRIGHT_KEYS", str(tmp_path / "keys"))
    with Workspace.init(tmp_path / "ws") as workspace:
        yield workspace


def add(ws, models, photo, **overrides):
    """Record a consent of "alice" as source for a year from `photo`; `overrides` change any field."""
    encoder, detector = models
    fields = dict(identity="alice", display_name="Alice A.", role="source", purpose=PURPOSE,
                  channels=["film festival", "youtube"], expires=utc_today() + timedelta(days=365), photo=photo)
    return add_consent(ws, **fields | overrides, encoder=encoder, detector=detector, signer=load_identity(),
                       trust=load_trust())
