"""Shared fixtures: real sample media from the asset registry (fetched once into the user's cache)."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from facewright.assets import asset_path


@pytest.fixture(scope="session", autouse=True)
def signing_keys(tmp_path_factory) -> Iterator[Path]:
    """Every test signs with one throw-away identity: the user's own keys folder is never touched."""
    folder = tmp_path_factory.mktemp("keys") / "keys"
    previous = os.environ.get("FACEWRIGHT_KEYS")
    os.environ["FACEWRIGHT_KEYS"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("FACEWRIGHT_KEYS", None)
    else:
        os.environ["FACEWRIGHT_KEYS"] = previous


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
