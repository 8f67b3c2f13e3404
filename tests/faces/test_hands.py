"""Hands on real frames of the sample clip: found where they are, tracked through the clip in video mode, their
region drawn around the joints (a finger wide), looked for around a face only, mapped into a face crop."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from facewright.faces.align import alignment_matrix
from facewright.faces.hands import HandTracker, around_faces, hand_mask
from facewright.faces.landmarks import Landmarker
from facewright.media import read_video


@pytest.mark.slow
def test_hands_are_tracked_where_the_clip_has_them(sample):
    found = {}
    with HandTracker(video=True) as tracker, Landmarker(video=True, max_faces=1) as landmarker:
        for frame in read_video(sample("WolfgangLanger_Pexels.mp4")):
            if frame.index > 260:
                break
            faces = landmarker.detect(frame.image, frame.time * 1000)
            box = around_faces([f.box for f in faces], frame.image.shape)
            found[frame.index] = (frame.image, tracker.detect(frame.image, frame.time * 1000, box))
    with_hands = [i for i, (_, hands) in found.items() if hands]
    assert not any(found[i][1] for i in range(0, 50))  # none before the woman raises her hands
    assert len(with_hands) > 140 and min(with_hands) < 70 and max(with_hands) > 215  # ~58-229 in the clip
    image, hands = found[120]
    hand = hands[0]
    assert hand.points.shape == (21, 2) and hand.side in ("Left", "Right")
    region = hand_mask(image.shape, hands)
    inside = np.clip(np.rint(hand.points).astype(int), 0, [image.shape[1] - 1, image.shape[0] - 1])
    assert region[inside[:, 1], inside[:, 0]].all()  # every joint is inside the region
    area = region.sum()
    assert 0.4 * hand.size ** 2 < area < 3.0 * hand.size ** 2  # a hand's worth of pixels, not a box around it
    x0, y0, x1, y1 = hand.box
    assert region[:, : max(0, int(x0) - 2)].sum() == 0 and region[: max(0, int(y0) - 2)].sum() == 0


def test_the_region_maps_into_a_face_crop(sample):
    frame = next(f for f in read_video(sample("WolfgangLanger_Pexels.mp4")) if f.index == 66)
    with Landmarker() as landmarker, HandTracker(video=False) as tracker:
        [face] = landmarker.detect(frame.image)
        hands = tracker.detect(frame.image, box=around_faces([face.box], frame.image.shape))
    assert hands
    matrix = alignment_matrix(face.points68(), 128, "whole_face")
    in_crop = hand_mask((128, 128), hands, matrix) > 0.5
    warped = cv2.warpAffine(hand_mask(frame.image.shape, hands), matrix, (128, 128)) > 0.5
    assert in_crop.sum() > 100
    assert (in_crop & warped).sum() / (in_crop | warped).sum() > 0.9  # drawn in the crop = drawn, then warped
    assert hand_mask((50, 50), []).sum() == 0


def test_around_faces_is_one_box_inside_the_image():
    boxes = [np.array([100, 100, 140, 150]), np.array([300, 80, 340, 130])]
    box = around_faces(boxes, (360, 640, 3))
    assert box[0] < 100 and box[2] > 340 and box[1] < 80 and box[3] > 150
    assert box[0] >= 0 and box[1] >= 0 and box[2] <= 640 and box[3] <= 360
    assert around_faces([], (360, 640, 3)) is None
