"""Tracking: synthetic boxes with known identities, then one real talking-head video."""
from __future__ import annotations

import dlib
import numpy as np
import pytest

from facewright.assets import asset_path
from facewright.errors import OptionError
from facewright.faces.boxes import box_iou
from facewright.faces.identity import IdentityEncoder
from facewright.faces.track import Tracker, greedy_assign, link_tracks
from facewright.faces.types import Detection
from facewright.media import read_video

UNIT = np.eye(128, dtype=np.float32)
ALICE, BOB = 0 * UNIT[0], UNIT[0]  # 1.0 apart: two people by dlib's 0.6 threshold


def face(x: float, y: float = 100.0, size: float = 100.0) -> Detection:
    return Detection(np.array([x, y, x + size, y + size], np.float32), 1.0)


def noisy(identity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return identity + rng.normal(0, 0.01, 128).astype(np.float32)  # ~0.11 L2: one person's frame-to-frame spread


def test_iou_known_values():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 10]], np.float32)
    # Half-overlapping squares: intersection 50, union 150.
    np.testing.assert_allclose(box_iou(boxes[:1], boxes), [[1.0, 1 / 3, 0.0, 0.0]], atol=1e-6)


def test_greedy_assign_takes_cheapest_pairs_first():
    cost = np.array([[0.1, 0.2], [0.3, 0.9], [0.05, 0.5]])
    allowed = np.array([[True, True], [True, False], [True, True]])
    # (2,0) is cheapest; then row 0 takes column 1; row 1 is left without an allowed free column.
    assert greedy_assign(cost, allowed) == [(2, 0), (0, 1)]


def test_crossing_people_stay_two_tracks():
    """Alice walks right, Bob left, 40 px a frame past each other; detections come in no particular order.

    Between frames 4 and 5 each box overlaps the other person's next box more (IoU 0.67) than its own (0.43):
    overlap alone swaps them, identity keeps them.
    """
    rng = np.random.default_rng(0)
    per_frame, embeddings = [], []
    for t in range(10):
        people = [(face(10 + 40 * t), noisy(ALICE, rng)), (face(390 - 40 * t), noisy(BOB, rng))]
        rng.shuffle(people)
        per_frame.append([p[0] for p in people])
        embeddings.append(np.stack([p[1] for p in people]))
    tracks = link_tracks(per_frame, embeddings)
    assert [len(t) for t in tracks] == [10, 10]
    assert sorted(np.diff(t.boxes[:, 0]).tolist() for t in tracks) == [[-40] * 9, [40] * 9]
    # Without identity: each track turns back at the swap (frame 4 -> 5 moves 20 px on toward the other).
    swapped = link_tracks(per_frame)
    assert sorted(np.sign(np.diff(t.boxes[:, 0])).tolist() for t in swapped) == [[-1] * 5 + [1] * 4,
                                                                                 [1] * 5 + [-1] * 4]


def test_cut_to_another_person_elsewhere_starts_a_new_track():
    rng = np.random.default_rng(1)
    per_frame = [[face(100 + t)] for t in range(10)] + [[face(400 + t)] for t in range(10)]
    embeddings = [noisy(ALICE if t < 10 else BOB, rng)[None] for t in range(20)]
    tracks = link_tracks(per_frame, embeddings)
    assert [t.frames for t in tracks] == [list(range(10)), list(range(10, 20))]


def test_cut_to_another_person_at_the_same_place_starts_a_new_track():
    """Shot / reverse shot: both framed alike. Overlap alone would merge them; identity keeps them apart."""
    rng = np.random.default_rng(2)
    embeddings = [noisy(ALICE if t < 5 else BOB, rng)[None] for t in range(10)]
    assert [len(t) for t in link_tracks([[face(100)]] * 10, embeddings)] == [5, 5]
    assert [len(t) for t in link_tracks([[face(100)]] * 10)] == [10]  # no embeddings: overlap decides


def test_same_person_after_a_jump_continues():
    rng = np.random.default_rng(3)
    per_frame = [[face(100)]] * 5 + [[face(400)]] * 5  # a camera cut that keeps the same person
    assert len(link_tracks(per_frame, [noisy(ALICE, rng)[None] for _ in range(10)])) == 1
    assert len(link_tracks(per_frame)) == 2  # without identity a jump is a new track


@pytest.mark.parametrize("embed", [True, False])
def test_short_gap_continues_long_gap_starts_anew(embed):
    """A hand covers the face for 10 frames: one track. Absent for 40 frames: a new track."""
    rng = np.random.default_rng(4)
    frames = [*range(10), *range(20, 30), *range(70, 80)]
    per_frame = [[face(100 + f)] for f in frames]
    embeddings = [noisy(ALICE, rng)[None] for _ in frames] if embed else None
    tracks = link_tracks(per_frame, embeddings, frames=frames, max_gap=15)
    assert [t.frames for t in tracks] == [frames[:20], frames[20:]]
    identity = tracks[0].identity
    assert identity.shape == (128,) if embed else identity is None


def test_tracker_streams_ids_and_checks_input():
    tracker = Tracker()
    assert tracker.update(0, [face(0), face(300)]) == [0, 1]
    assert tracker.update(1, [face(305), face(2)]) == [1, 0]
    assert tracker.update(2, []) == []
    with pytest.raises(ValueError, match="increase"):
        tracker.update(2, [])
    with pytest.raises(ValueError, match="embeddings"):
        tracker.update(3, [face(0)], np.zeros((2, 128), np.float32))
    with pytest.raises(ValueError, match="must be equal"):
        link_tracks([[face(0)]], frames=[0, 1])


@pytest.mark.parametrize("options", [{"max_gap": -1}, {"min_iou": 0}, {"min_iou": 1.5}, {"max_distance": 0}])
def test_tracker_rejects_bad_options(options):
    with pytest.raises(OptionError):
        Tracker(**options)


HOG = dlib.get_frontal_face_detector()


def hog_faces_half_scale(image: np.ndarray) -> list[Detection]:
    """HOG on a half-size copy (4x faster; faces here are ~200 px), boxes scaled back to full-size pixels."""
    rects = HOG(np.ascontiguousarray(image[::2, ::2]), 0)
    return [Detection(2 * np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32), 1.0) for r in rects]


def test_talking_head_video_gives_one_dominant_track():
    """Every 8th frame of WolfgangLanger_Pexels.mp4 (59 frames): one woman, hands over her face at times.

    Every 8th, not every 4th: a dlib embedding costs ~140 ms on these CPUs and the test must stay short.
    """
    encoder = IdentityEncoder()
    frames, per_frame, embeddings = [], [], []
    for frame in read_video(asset_path("WolfgangLanger_Pexels.mp4")):
        if frame.index % 8 == 0:
            faces = hog_faces_half_scale(frame.image)
            frames.append(frame.index)
            per_frame.append(faces)
            embeddings.append(encoder.embed_many(frame.image, faces))
    with_face = sum(1 for faces in per_frame if faces)
    assert len(frames) == 59 and with_face >= 50
    tracks = link_tracks(per_frame, embeddings, frames=frames)
    assert max(len(t) for t in tracks) >= 0.8 * with_face
