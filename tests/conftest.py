"""Shared fixtures: real sample media from the asset registry (fetched once into the user's cache)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from facewright.assets import asset_path


@pytest.fixture(scope="session")
def sample():
    """sample("WolfgangLanger_Pexels.mp4") -> verified cached path (fetched through the registry if missing)."""
    return asset_path


@pytest.fixture
def workspace_env(tmp_path, monkeypatch) -> Path:
    """A fresh workspace location for the test, via FACEWRIGHT_WORKSPACE."""
    root = tmp_path / "ws"
    monkeypatch.setenv("FACEWRIGHT_WORKSPACE", str(root))
    return root


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
