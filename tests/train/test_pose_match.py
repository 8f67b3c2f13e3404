"""--pose-match: A's faces are drawn by how close their head pose is to B's, the rest of the draws uniform."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from facewright.config import TrainOptions
from facewright.errors import OptionError
from facewright.train.batches import BatchSource, Pair, pose_weights
from facewright.train.data import load_faceset
from facewright.train.distributed import Dist
from facewright.train.presets import preset_options
from facewright.train.tensors import FacesetTensors
from facewright.workspace import Workspace

# A looks down 25 degrees in its first 30 faces and straight ahead (pitch 2) in its last 10; B's footage is
# all straight ahead.
A_POSES = np.array([(0.0, -25.0)] * 30 + [(0.0, 2.0)] * 10, np.float32)
B_POSES = np.array([(0.0, 2.0), (1.0, 3.0), (-1.0, 1.0)], np.float32)


def test_the_faces_near_the_footages_pose_get_the_matched_share():
    weights = pose_weights(A_POSES, B_POSES, 0.6).numpy()
    assert weights.sum() == pytest.approx(1.0)
    near, far = weights[30:].sum(), weights[:30].sum()
    # uniform share: 0.4 spread over 40 faces (0.1 to the near ten); matched share: all of 0.6 to them
    assert near == pytest.approx(0.1 + 0.6) and far == pytest.approx(0.3)
    assert np.allclose(weights[:30], weights[0]) and np.allclose(weights[30:], weights[30])
    closer = pose_weights(np.array([(0.0, 2.0), (0.0, 7.0), (0.0, 12.0)], np.float32), B_POSES, 1.0).numpy()
    assert closer[0] > closer[1] > closer[2] > 0  # one and two bandwidths away: favoured, less and less


def test_nothing_is_favoured_without_an_amount_or_known_poses():
    assert pose_weights(A_POSES, B_POSES, 0.0) is None
    assert pose_weights(None, B_POSES, 0.6) is None and pose_weights(A_POSES, None, 0.6) is None
    assert pose_weights(A_POSES, np.full((3, 2), np.nan, np.float32), 0.6) is None
    # no face of A within many bandwidths of B's poses: the density is 0 everywhere, so uniform
    assert pose_weights(A_POSES, np.array([(80.0, 80.0)], np.float32), 0.6) is None


def test_a_face_of_unknown_pose_gets_only_the_uniform_share():
    poses = A_POSES.copy()
    poses[35] = np.nan
    weights = pose_weights(poses, B_POSES, 0.6).numpy()
    assert weights[35] == pytest.approx(0.4 / 40) and weights.sum() == pytest.approx(1.0)


def test_with_flips_a_face_turned_the_other_way_counts_as_its_mirror_image():
    turned = np.array([(-8.0, 2.0), (8.0, 2.0), (0.0, -20.0)], np.float32)
    references = np.array([(8.0, 2.0)], np.float32)
    plain = pose_weights(turned, references, 1.0).numpy()
    assert plain[1] > 100 * plain[0]  # without flips only the face turned B's way is near
    mirrored = pose_weights(turned, references, 1.0, mirrored=True).numpy()
    assert mirrored[0] == pytest.approx(mirrored[1]) and mirrored[2] < 0.01 * mirrored[0]


def _faces(name: str, poses: np.ndarray | None) -> FacesetTensors:
    n = len(poses) if poses is not None else 40
    images = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 3, 16, 16).contiguous()
    masks = torch.full((n, 1, 16, 16), 255, dtype=torch.uint8)
    return FacesetTensors(name, images, masks, masks.clone(), np.zeros((n, 128), np.float32), "whole_face", "0" * 64,
                          poses)


def _drawn(pose_match: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Which of A's and of B's faces 50 steps of batches of 8 drew (a face's pixels are its index)."""
    options = TrainOptions(resolution=16, batch=8, pose_match=pose_match, seed=seed, warp=0.0, rotate=0.0,
                           device="cpu")
    pair = Pair(_faces("a", A_POSES), _faces("b", np.tile(B_POSES, (14, 1))[:40]), "consent-a", "consent-b")
    source = BatchSource(pair, options, torch.device("cpu"), Dist())
    source.augmenter = lambda images, *rest, **kw: images  # the faces as drawn, not augmented
    a, b = zip(*(source.next() for _ in range(50)), strict=True)
    return (torch.cat(a)[:, 0, 0, 0].numpy(), torch.cat(b)[:, 0, 0, 0].numpy())


def test_training_draws_a_by_pose_and_b_uniformly_and_repeats_with_the_seed():
    a, b = _drawn(0.6)
    assert np.mean(a >= 30) == pytest.approx(0.7, abs=0.08)  # 400 draws of an expected 0.7
    assert np.mean(b >= 30) == pytest.approx(0.25, abs=0.08)  # B: each face alike
    uniform, _ = _drawn(0.0)
    assert np.mean(uniform >= 30) == pytest.approx(0.25, abs=0.08)
    assert np.array_equal(_drawn(0.6)[0], a) and not np.array_equal(_drawn(0.6, seed=1)[0], a)


def test_a_facesets_poses_come_from_its_catalog_rows_in_the_order_of_its_faces(pair_ws):
    with Workspace.open(pair_ws) as ws:
        faces = load_faceset(ws, "anna", 64)
        rows = ws.conn.execute("SELECT yaw, pitch FROM faces JOIN facesets ON facesets.id = faces.faceset_id "
                               "WHERE facesets.name = 'anna' AND status = 'kept' ORDER BY faces.id").fetchall()
    assert faces.poses.shape == (len(faces), 2) == (len(rows), 2)
    assert np.allclose(faces.poses, np.array(rows, np.float32)) and np.ptp(faces.poses[:, 0]) > 1  # she turns


def test_the_option_is_a_share():
    with pytest.raises(OptionError, match="--pose-match"):
        TrainOptions(pose_match=1.5)
    assert TrainOptions().pose_match == 0.0 and preset_options("demo")["pose_match"] == 0.6  # pays on short runs
