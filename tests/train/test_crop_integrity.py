"""Training learns only from the crops that were checked against the consent photo: a crop replaced with
another person's face is refused, by its recorded hash and by a random identity check of the crops."""
from __future__ import annotations

import hashlib
import shutil
import sqlite3

import pytest

from facewright import api
from facewright.errors import ConsentError
from facewright.faces.align import align_face
from facewright.faces.landmarks import Landmarker
from facewright.media import read_image, read_video, write_image

TINY = dict(steps=2, model="test-ae", resolution=64, batch=2, preview_every=0)


@pytest.fixture
def ws(pair_ws, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(pair_ws, root)
    return root


def _kept(root, faceset: str) -> list[tuple[int, str]]:
    with sqlite3.connect(root / "catalog.sqlite") as conn:
        return conn.execute("SELECT f.id, f.crop_path FROM faces f JOIN facesets s ON s.id = f.faceset_id "
                            "WHERE s.name = ? AND f.status = 'kept' ORDER BY f.id", (faceset,)).fetchall()


def _someone_else(sample, size: int):
    """An aligned crop of another person (the man of single_face.mp4) at the faceset's crop size."""
    image = next(read_video(sample("single_face.mp4"))).image
    with Landmarker(video=False) as landmarker:
        return align_face(image, landmarker.detect(image)[0].points68(), size, "whole_face").image


def test_extraction_records_the_sha256_of_every_kept_crop(ws):
    with sqlite3.connect(ws / "catalog.sqlite") as conn:
        rows = conn.execute("SELECT crop_path, crop_sha256 FROM faces f JOIN facesets s ON s.id = f.faceset_id "
                            "WHERE s.name = 'anna' AND f.status = 'kept'").fetchall()
    folder = ws / "facesets" / "anna"
    assert rows and all(digest == hashlib.sha256((folder / path).read_bytes()).hexdigest() for path, digest in rows)


def test_a_crop_overwritten_with_another_persons_face_is_refused(ws, sample):
    [(_, path), *_] = _kept(ws, "anna")
    crop = ws / "facesets" / "anna" / path
    write_image(_someone_else(sample, read_image(crop).shape[0]), crop)
    with pytest.raises(ConsentError, match=rf"1 crop\(s\) of faceset 'anna' changed after extraction \({path}\)"):
        api.train("anna", "ben", name="m", workspace=ws, **TINY)
    assert not (ws / "models" / "m" / "checkpoints").exists()


def test_crops_replaced_and_rehashed_in_the_catalog_are_caught_by_the_identity_check(ws, sample):
    """A user who also rewrites the catalog's hashes: the crops themselves are compared with the consent photo."""
    folder = ws / "facesets" / "anna"
    other = None
    with sqlite3.connect(ws / "catalog.sqlite") as conn:
        for face_id, path in _kept(ws, "anna"):
            other = other if other is not None else _someone_else(sample, read_image(folder / path).shape[0])
            write_image(other, folder / path)
            conn.execute("UPDATE faces SET crop_sha256 = ? WHERE id = ?",
                         (hashlib.sha256((folder / path).read_bytes()).hexdigest(), face_id))
    with pytest.raises(ConsentError, match="crops of faceset 'anna' checked are not the person in the consent photo"):
        api.train("anna", "ben", name="m", workspace=ws, **TINY)


def test_crops_from_before_hashes_are_checked_once_then_hashed(ws):
    with sqlite3.connect(ws / "catalog.sqlite") as conn:
        conn.execute("UPDATE faces SET crop_sha256 = NULL")
    result = api.train("anna", "ben", name="m", workspace=ws, **TINY)
    assert result.step == 2
    with sqlite3.connect(ws / "catalog.sqlite") as conn:
        unhashed = conn.execute("SELECT COUNT(*) FROM faces f JOIN facesets s ON s.id = f.faceset_id WHERE s.name "
                                 "IN ('anna', 'ben') AND f.status = 'kept' AND f.crop_sha256 IS NULL").fetchone()
    assert unhashed == (0,)
