"""The occlusion mask model: labels from the mesh less the hands, a tiny budget that learns (loss falls, held-out
IoU above a floor), checkpoints that resume, corrected masks checked, stored masks rewritten, swaps using it."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from facewright import api
from facewright.errors import InputError, OptionError
from facewright.train.mask_data import load_mask_set
from facewright.train.mask_model import load_mask_model, mask_model_for
from facewright.train.mask_trainer import VARIANTS, held_out_batch, mask_metrics
from facewright.workspace import Workspace
from tests.conftest import SWAP_MODEL

NAME = "ben-occlusion"  # not the faceset's own name: the other swap tests must not pick it up by default
STEPS = 150
IOU_FLOOR = 0.80  # held-out crops with synthetic occluders (a perfect face outline that knows no occluder: ~0.78)


@pytest.fixture(scope="module")
def mask_ws(model_ws):
    result = api.train_mask("ben", name=NAME, workspace=model_ws, resolution=64, batch=8, steps=STEPS,
                            preview_every=50, save_every=50)
    return model_ws, result


def test_labels_are_the_mesh_hull_and_real_hands_are_banked(pair_ws):
    with Workspace.open(pair_ws) as ws:
        data = load_mask_set(ws, "ben", 64)
    assert data.images.shape[1:] == (64, 64, 3) and data.labels.shape[1:] == (64, 64)
    covered = data.labels.mean(axis=(1, 2))
    assert 0.15 < covered.mean() < 0.7  # the face, not the crop
    assert data.hands_found == 0  # ben never raises a hand
    assert data.bank.hands  # anna's hands, from the workspace's other faceset
    assert data.bank.faces and data.bank.patches
    assert data.held_out and not set(data.held_out) & set(data.train_indices)


def test_a_tiny_budget_learns_occluders(mask_ws):
    root, result = mask_ws
    assert result.steps == STEPS and result.checkpoint is not None and result.checkpoint.is_file()
    lines = [json.loads(line) for line in (result.folder / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [50, 100, 150]
    assert result.last_loss < 0.6 * result.first_loss
    assert result.iou > IOU_FLOOR
    assert result.iou > lines[0]["iou"] - 0.02  # no worse than early on
    assert result.occluder_recall > 0.5
    with Workspace.open(root) as ws:
        data = load_mask_set(ws, "ben", 64)
    images, labels, occluders = held_out_batch(data)
    outline_only = mask_metrics(np.repeat(data.labels[data.held_out], VARIANTS, axis=0), labels, occluders)
    assert outline_only["occluder_recall"] == 0
    assert result.iou > outline_only["iou"] + 0.03, "it learned occluders, not only the face's outline"
    assert (result.folder / "preview.png").is_file()
    with Workspace.open(root) as ws:
        model = load_mask_model(ws, NAME, "cpu")
        assert model.faceset == "ben" and model.resolution == 64
        assert mask_model_for(ws, "ben") is None  # only a model named after the faceset is picked by default
        crops = np.zeros((2, 64, 64, 3), np.uint8)
        assert model.predict(crops).shape == (2, 64, 64)


def test_resume_continues_the_same_model(mask_ws):
    root, _ = mask_ws
    result = api.train_mask("ben", name=NAME, workspace=root, resume=True, steps=STEPS + 10, preview_every=0)
    assert result.steps == STEPS + 10
    with pytest.raises(OptionError, match="not a mask model of faceset"):
        api.train_mask("anna", name=NAME, workspace=root, resume=True, steps=5, preview_every=0)


def test_corrected_masks_are_checked_by_name_and_size(mask_ws, tmp_path):
    root, _ = mask_ws
    folder = tmp_path / "fixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "not-a-crop.png"), np.zeros((64, 64), np.uint8))
    with pytest.raises(InputError, match="not named after a kept crop"):
        api.train_mask("ben", name="fixed", workspace=root, masks=folder, steps=1, preview_every=0)
    with Workspace.open(root) as ws:
        stem = load_mask_set(ws, "ben", 64).names[3]
    (folder / "not-a-crop.png").unlink()
    cv2.imwrite(str(folder / f"{stem}.png"), np.zeros((32, 32), np.uint8))
    with pytest.raises(InputError, match="32 x 32 pixels, the crops 64 x 64"):
        api.train_mask("ben", name="fixed", workspace=root, masks=folder, steps=1, preview_every=0)
    cv2.imwrite(str(folder / f"{stem}.png"), np.zeros((64, 64), np.uint8))
    with Workspace.open(root) as ws:
        data = load_mask_set(ws, "ben", 64, corrections=folder)
    assert data.corrected == 1 and data.labels[3].max() == 0


@pytest.mark.slow
def test_occlusion_swap_uses_the_mask_model_and_says_when_it_learned_someone_else(mask_ws, sample, tmp_path):
    root, _ = mask_ws
    [result] = api.swap(sample("single_face.mp4"), tmp_path / "out.mp4", model=SWAP_MODEL, workspace=root,
                        mask="occlusion", mask_model=NAME, hands="on")
    assert "mask model" in result.stages and "hands" in result.stages
    assert not any("mask model" in note for note in result.notes)
    api.train_mask("anna", name="anna-mask", workspace=root, resolution=64, steps=2, preview_every=0, batch=2)
    [result] = api.swap(sample("single_face.mp4"), tmp_path / "other.mp4", model=SWAP_MODEL, workspace=root,
                        mask="occlusion", mask_model="anna-mask")
    assert any("learned faceset anna, not ben" in note for note in result.notes)


def test_stored_masks_are_rewritten_with_the_mask_model(mask_ws, tmp_path):
    root, _ = mask_ws
    folder = root / "facesets" / "ben" / "masks"
    shutil.copytree(folder, tmp_path / "saved")  # the session's other tests train on ben's masks as extracted
    try:
        hulls = {p.name: cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in folder.glob("*.png")}
        stored = api.apply_mask_model("ben", NAME, workspace=root)
        assert stored.faces == len(hulls)
        for name, hull in hulls.items():
            mask = cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)
            assert mask.shape == hull.shape and (mask <= hull).all()  # the hull, less what the model leaves out
    finally:
        shutil.rmtree(folder)
        shutil.copytree(tmp_path / "saved", folder)
