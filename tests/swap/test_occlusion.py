"""What stays in front of the swapped face: real hands on the sample clip, a learned mask model's occluders,
the mouth kept on request; the soft edge of every cut lies outside what it keeps."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from facewright import api
from facewright.config import SwapOptions
from facewright.errors import OptionError
from facewright.faces.hands import HandTracker, around_faces, hand_mask
from facewright.faces.landmarks import Landmarker
from facewright.faces.mask import hull_mask
from facewright.media import read_video
from facewright.swap.compose import Compositor
from facewright.swap.model import load_swap_model
from facewright.swap.occlusion import Occlusion, mouth_interior, occluder_keep
from facewright.workspace import Workspace
from tests.conftest import SWAP_MODEL as MODEL

HAND_FRAME = 66  # WolfgangLanger: a hand over the face that the still-image hand model finds (video mode
# tracks it through ~58-229; a still image of most of those frames is too hard for the palm detector alone)


def _frame(video, index):
    return next(f for f in read_video(video) if f.index == index).image


def _points(image):
    with Landmarker() as landmarker:
        [face] = landmarker.detect(image)
    return face.points68()


def _changed(a, b):
    return np.abs(a.astype(int) - b.astype(int)).max(axis=2)


@pytest.fixture(scope="module")
def model(model_ws):
    with Workspace.open(model_ws) as ws:
        return load_swap_model(ws, MODEL, "cpu")


def test_every_occluder_pixel_over_the_face_is_kept_and_the_face_beyond_a_thin_edge_is_not():
    size, face_px = 128, 80.0
    hull = np.zeros((size, size), np.float32)
    hull[20:108, 24:104] = 1
    bar = np.zeros_like(hull)
    bar[60:68, :] = 1  # crosses the whole face and the outline
    keep = occluder_keep(hull, bar, face_px, blur=0.06)
    assert keep[(bar > 0) & (hull > 0)].min() == 1  # no occluder pixel over the face gets any of the new face
    assert keep[30:54, 40:90].max() == 0 and keep[74:100, 40:90].max() == 0  # 6 px away the face is swapped
    assert occluder_keep(hull, None, face_px, 0.06) is None
    outside = np.zeros_like(hull)
    outside[0:10, 0:10] = 1  # not over the face's core: the hull's own edge decides there
    assert occluder_keep(hull, outside, face_px, 0.06) is None


def test_the_inner_mouth_is_a_closed_region_inside_the_lips(sample):
    image = _frame(sample("single_face.mp4"), 0)
    points = _points(image)
    inner = mouth_interior(image.shape, points)
    assert inner.sum() > 0
    lips = np.zeros(image.shape[:2], np.float32)
    cv2.fillPoly(lips, [np.rint(points[48:60]).astype(np.int32)], 1.0)
    assert (inner * (1 - lips)).sum() < 0.05 * inner.sum()  # inside the outer lips
    keep = occluder_keep(hull_mask(image.shape, points), None, 100.0, 0.06, mouth=inner)
    assert keep[inner > 0].min() == 1


def test_mouth_keep_leaves_the_inner_mouth_unchanged(model, sample):
    with Landmarker(video=True) as landmarker:
        frames = [(f.image, landmarker.detect(f.image, f.time * 1000)) for f in read_video(sample("single_face.mp4"))]
    image, [face] = max(((i, f) for i, f in frames if len(f) == 1), key=lambda pair: pair[1][0].mouth_open)
    points = face.points68()
    inner = mouth_interior(image.shape, points) > 0
    assert inner.sum() > 30, "the sample clip should have an open mouth somewhere"
    options = SwapOptions(color_stats="frame")
    swapped = Compositor(model, options)(image, [(0, points)])
    kept = Compositor(model, options, occlusion=Occlusion(keep_mouth=True))(image, [(0, points)])
    assert _changed(swapped, image)[inner].mean() > 3  # the plain swap repaints the mouth
    assert _changed(kept, image)[inner].max() == 0  # kept: every pixel of the inner mouth is the frame's
    assert _changed(kept, image)[hull_mask(image.shape, points) > 0].mean() > 2  # the rest is still swapped


def test_hands_in_front_of_the_face_are_kept(model, sample):
    image = _frame(sample("WolfgangLanger_Pexels.mp4"), HAND_FRAME)
    points = _points(image)
    face = hull_mask(image.shape, points) > 0
    box = around_faces([np.concatenate([points.min(axis=0), points.max(axis=0)])], image.shape)
    with HandTracker(video=False) as tracker:
        found = tracker.detect(image, box=box)  # as the swap looks: around the face
    assert found, "the sample frame has a hand over the face"
    hand = (hand_mask(image.shape, found) > 0) & face
    assert hand.sum() > 500
    options = SwapOptions(color_stats="frame")
    plain = Compositor(model, options)(image, [(0, points)])
    with HandTracker(video=False) as tracker:
        kept = Compositor(model, options, occlusion=Occlusion(hands=tracker))(image, [(0, points)])
    assert (_changed(plain, image)[hand] > 8).mean() > 0.5  # without the hand model the hand is painted over
    assert (_changed(kept, image)[hand] > 8).mean() < 0.01
    visible = face & ~hand
    assert (_changed(kept, image)[visible] > 8).mean() > 0.5 * (_changed(plain, image)[visible] > 8).mean()


def test_mask_occlusion_without_a_mask_model_says_how_to_make_one(model_ws, sample, tmp_path):
    with pytest.raises(OptionError, match="mask train ben"):
        api.swap(sample("single_face.jpg"), tmp_path / "out.png", model=MODEL, workspace=model_ws, mask="occlusion",
                 all_faces=True)
    with pytest.raises(OptionError, match="--mask occlusion"):
        api.swap(sample("single_face.jpg"), tmp_path / "out.png", model=MODEL, workspace=model_ws, mask="hull",
                 mask_model="x")
