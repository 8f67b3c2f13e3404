"""Quality metrics on constructed cases, against values worked out independently."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab

from facewright.score import metrics
from facewright.score.report import ScoreReport, summarize_frames, worst_frames
from facewright.score.scorer import FrameScore, spread

RNG = np.random.default_rng(7)


def test_an_unchanged_face_is_at_distance_0_from_the_target_and_not_recognized_as_the_source():
    face, source = RNG.normal(0, 0.1, 128), RNG.normal(0, 0.1, 128)
    score = metrics.identity_score(face, source, face)
    assert score.to_target == 0.0
    assert score.to_source == pytest.approx(float(np.linalg.norm(face - source)), rel=1e-5)
    assert not score.as_source and not score.closer_to_source


def test_a_face_near_the_source_and_far_from_the_target_counts_as_the_source():
    source = np.zeros(128)
    output, target = source + 0.3 / np.sqrt(128), source + 1.0 / np.sqrt(128)  # at 0.3 and 0.7
    score = metrics.identity_score(output, source, target)
    assert score.to_source == pytest.approx(0.3, abs=1e-6) and score.to_target == pytest.approx(0.7, abs=1e-6)
    assert score.as_source and score.closer_to_source
    assert not metrics.identity_score(output, source, output).as_source
    # "not as B" includes a distance of exactly the threshold; "as A" does not
    assert metrics.IdentityScore(0.3, 0.6, 0.6).as_source and not metrics.IdentityScore(0.6, 0.9, 0.6).as_source


def test_sface_similarity_judges_like_a_and_not_like_the_original():
    a, b = np.eye(128, dtype=np.float32)[:2]
    output = (0.8 * a + 0.2 * b) / np.linalg.norm(0.8 * a + 0.2 * b)
    score = metrics.similarity_score(output, a, b)
    norm = np.sqrt(0.8**2 + 0.2**2)
    assert score.to_source == pytest.approx(0.8 / norm) and score.to_target == pytest.approx(0.2 / norm)
    assert score.as_source and score.closer_to_source
    unchanged = metrics.similarity_score(b, a, b)  # the original face left as it was
    assert unchanged.to_target == 1.0 and not unchanged.as_source and not unchanged.closer_to_source
    # "like A" includes exactly the threshold; "not like B" does not
    assert metrics.SimilarityScore(0.4, 0.1, 0.4).as_source and not metrics.SimilarityScore(0.9, 0.4, 0.4).as_source


def test_expression_correlation():
    shapes = RNG.uniform(0, 1, 52)
    assert metrics.expression_correlation(shapes, shapes) == 1.0
    assert metrics.expression_correlation(shapes, 1 - shapes) == pytest.approx(-1.0)
    other = RNG.uniform(0, 1, 52)
    assert metrics.expression_correlation(shapes, other) == pytest.approx(np.corrcoef(shapes, other)[0, 1])
    flat = np.full(52, 0.2)
    assert metrics.expression_correlation(flat, flat) == 1.0
    assert metrics.expression_correlation(flat, shapes) == 0.0
    with pytest.raises(ValueError):
        metrics.expression_correlation(shapes, shapes[:51])


def test_mouth_and_eye_states_agree_on_the_same_side_of_the_threshold():
    assert metrics.agrees(0.6, 0.9, metrics.MOUTH_OPEN) and metrics.agrees(0.0, 0.1, metrics.MOUTH_OPEN)
    assert not metrics.agrees(0.1, 0.6, metrics.MOUTH_OPEN)


def test_pose_error_is_0_for_the_same_pose_and_wraps_around():
    assert metrics.pose_error((10, -5, 3), (10, -5, 3)) == 0.0
    assert metrics.pose_error((179, 0, 0), (-179, 0, 0)) == pytest.approx(2.0)
    assert metrics.pose_error((3, 4, 0), (0, 0, 0)) == pytest.approx(5.0)
    np.testing.assert_allclose(metrics.pose_difference((1, -2, 350), (-1, 2, 10)), (2, 4, 20))
    np.testing.assert_allclose(metrics.pose_offset((1, -2, 350), (-1, 2, 10)), (2, -4, -20))  # signed


def test_a_steady_tilt_reads_as_the_pose_offset_and_jitter_averages_out():
    frames = [_frame(0, swapped=True, pose_error=3.2, yaw_pitch_roll_error=(1.0, 3.0, 0.5),
                     yaw_pitch_roll_offset=(1.0, -3.0, 0.5)),
              _frame(1, swapped=True, pose_error=3.2, yaw_pitch_roll_error=(1.0, 3.0, 0.5),
                     yaw_pitch_roll_offset=(-1.0, -3.0, -0.5))]
    report = ScoreReport(None, None, "A", frames, summarize_frames(frames), [], False)
    assert report.summary["pose"]["offset"] == [0.0, -3.0, 0.0] and report.summary["pose"]["yaw_pitch_roll"] == \
        [1.0, 3.0, 0.5]
    [line] = [line for line in report.headline() if line.startswith("pose error")]
    assert line.endswith("mean offset yaw +0.0, pitch -3.0, roll +0.0 deg")


def test_region_change_and_flicker_ratio():
    a = RNG.integers(0, 256, (20, 30, 3), np.uint8)
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    mask = np.zeros((20, 30), np.float32)
    mask[5:15, 5:25] = 1
    expected = np.abs(b.astype(int) - a.astype(int))[5:15, 5:25].mean()
    assert metrics.region_change(a, b, mask) == pytest.approx(expected)
    assert metrics.region_change(a, a, mask) == 0.0
    assert metrics.region_change(a, b, np.zeros_like(mask)) == 0.0
    changes = [1.5, 2.0, 0.0, 3.25]
    assert metrics.flicker_ratio(changes, changes) == 1.0
    assert metrics.flicker_ratio([0, 0], [0, 0]) == 1.0
    assert metrics.flicker_ratio([2, 4], [1, 2]) == pytest.approx(2.0, rel=1e-3)


def test_seam_is_the_color_step_across_the_mask_border():
    inside_color, outside_color = (200, 120, 90), (90, 140, 200)
    image = np.empty((60, 60, 3), np.uint8)
    image[:] = outside_color
    image[15:45, 15:45] = inside_color
    mask = np.zeros((60, 60), np.float32)
    mask[15:45, 15:45] = 1
    lab = rgb2lab(np.array([[inside_color, outside_color]], np.uint8))[0]  # skimage, not OpenCV
    step = float(np.linalg.norm(lab[0] - lab[1]))
    assert metrics.seam(image, mask, width=3) == pytest.approx(step, rel=0.02)
    assert metrics.seam(np.full_like(image, 128), mask, width=3) == pytest.approx(0.0, abs=1e-3)
    assert metrics.seam(image, np.zeros_like(mask), width=3) == 0.0  # no border
    # A seam darker on the left and brighter on the right is still a seam (local, not ring averages).
    image[:, :30][mask[:, :30] == 0] = (150, 150, 150)
    image[:, 30:][mask[:, 30:] == 0] = (250, 250, 250)
    image[mask == 1] = (200, 200, 200)
    assert metrics.seam(image, mask, width=3) > 10


def test_outside_change_counts_pixels_beyond_the_changed_level():
    a = np.full((10, 10, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0] = 100 + metrics.CHANGED_LEVEL + 1
    b[0, 1] = 100 + metrics.CHANGED_LEVEL  # not beyond
    everywhere = np.ones((10, 10), np.float32)
    mean, share = metrics.outside_change(b, a, everywhere)
    assert share == pytest.approx(0.01) and mean == pytest.approx((2 * metrics.CHANGED_LEVEL + 1) / 100)
    assert metrics.outside_change(a, a, everywhere) == (0.0, 0.0)
    assert metrics.outside_change(b, a, np.zeros((10, 10))) == (0.0, 0.0)


def test_repainted_counts_region_pixels_whose_largest_channel_moved_beyond_the_level():
    a = np.full((10, 10, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0, 2] = 100 + metrics.REPAINTED_LEVEL + 1  # one channel is enough
    b[0, 1] = 100 - metrics.REPAINTED_LEVEL  # not beyond
    b[9, 9] = 0  # outside the region
    region = np.zeros((10, 10), np.float32)
    region[:5] = 1
    assert metrics.repainted(b, a, region) == (50, pytest.approx(1 / 50))
    assert metrics.repainted(a, a, region) == (50, 0.0)
    assert metrics.repainted(b, a, np.zeros((10, 10), bool)) == (0, None)


def test_sharpness_ratio_is_1_for_the_same_face_and_low_for_a_blurred_one():
    import cv2

    image = RNG.integers(0, 256, (64, 64, 3), np.uint8)
    mask = np.ones((64, 64), np.float32)
    assert metrics.sharpness_ratio(image, image, mask) == pytest.approx(1.0)
    assert metrics.sharpness_ratio(cv2.GaussianBlur(image, (0, 0), 3), image, mask) < 0.1


def test_summarize_skips_missing_values():
    summary = metrics.summarize([1.0, None, 3.0, float("nan"), 2.0], higher_is_better=True)
    assert summary["mean"] == 2.0 and summary["worst"] == 1.0 and summary["count"] == 3
    assert metrics.summarize([1.0, 3.0], higher_is_better=False)["worst"] == 3.0
    assert metrics.summarize([], higher_is_better=True) == {"mean": None, "p5": None, "p95": None, "worst": None,
                                                            "count": 0}


def _frame(index: int, **values) -> FrameScore:
    return FrameScore(index, index / 30, face=True, box=(0.0, 0.0, 10.0, 10.0), **values)


def test_worst_frames_take_the_worst_of_each_measure_in_turn():
    frames = [_frame(0, sface_to_source=0.1, expression=0.9, pose_error=1.0, seam=0.0),
              _frame(1, sface_to_source=0.7, expression=0.1, pose_error=2.0, seam=0.0),
              _frame(2, sface_to_source=0.7, expression=0.9, pose_error=20.0, seam=0.0),
              _frame(3, sface_to_source=0.6, expression=0.8, pose_error=3.0, seam=5.0),
              _frame(4, sface_to_source=0.8, expression=0.95, pose_error=0.5, seam=0.1)]
    worst = worst_frames(frames, 4)
    assert [(w.frame, w.metric) for w in worst] == [(0, "sface_to_source"), (1, "expression"), (2, "pose_error"),
                                                    (3, "seam")]
    assert worst_frames(frames, 0) == [] and len(worst_frames(frames, 10)) == 5


def test_summary_counts_and_flicker_over_frames():
    frames = [_frame(0, swapped=True, output_change=None, input_change=None, as_source=True, sface_to_source=0.6,
                     sface_to_target=0.1, closer_to_source=True, dlib_to_source=0.3, dlib_to_target=0.8,
                     dlib_as_source=True, dlib_closer_to_source=True),
              _frame(1, swapped=True, output_change=4.0, input_change=2.0),
              _frame(2, swapped=False, output_change=2.0, input_change=2.0, as_source=False, sface_to_source=0.1,
                     sface_to_target=0.9, closer_to_source=False, dlib_to_source=0.5, dlib_to_target=0.5,
                     dlib_as_source=False, dlib_closer_to_source=True)]
    summary = summarize_frames(frames)
    assert summary["coverage"] == {"frames": 3, "with_face": 3, "swapped": 2, "found_in_output": 0}
    identity, dlib = summary["identity"], summary["identity_dlib"]
    assert identity["judge"] == "sface" and identity["frames"] == 2 and identity["recognized_as_source"] == 0.5
    assert identity["similarity_to_source"]["mean"] == pytest.approx(0.35) and identity["closer_to_source"] == 0.5
    assert dlib["frames"] == 2 and dlib["to_source"]["mean"] == pytest.approx(0.4) and dlib["closer_to_source"] == 1.0
    assert summary["stability"]["flicker_ratio"] == pytest.approx(1.5, rel=1e-3)
    assert summary["expression"]["correlation"]["mean"] is None  # never measured: None, not 0


def test_how_well_a_swap_kept_the_expression_is_measured_where_it_swapped():
    frames = [_frame(0, swapped=True, expression=0.5, pose_error=4.0, as_source=True, sface_to_source=0.6),
              _frame(1, swapped=False, expression=1.0, pose_error=0.0, as_source=False, sface_to_source=0.1)]
    summary = summarize_frames(frames)
    assert summary["expression"]["correlation"]["mean"] == 0.5 and summary["pose"]["error"]["mean"] == 4.0
    assert summary["identity"]["recognized_as_source"] == 0.5  # an unswapped frame fails identity
    unswapped = summarize_frames([frames[1]])  # nothing swapped: the faces there are what is measured
    assert unswapped["expression"]["correlation"]["mean"] == 1.0


def test_hands_repainted_pools_pixels_over_the_swapped_frames_and_reads_in_the_headline():
    frames = [_frame(0, swapped=True, hand_pixels=100, hands_repainted=1.0),
              _frame(1, swapped=True, hand_pixels=300, hands_repainted=0.0),
              _frame(2, swapped=True, hand_pixels=0),  # no hand in front of the face
              _frame(3, swapped=False, hand_pixels=500, hands_repainted=0.0)]  # not swapped: not the swap's merit
    hands = summarize_frames(frames)["hands"]
    assert hands == {"repainted": 0.25, "frames": 2, "pixels": 400, "level": metrics.REPAINTED_LEVEL}
    report = ScoreReport(None, None, "A", frames, summarize_frames(frames), [], False)
    assert "hands repainted 25% of their pixels in front of the face" in report.headline()[-1]
    assert "(beyond 12 levels; 2 frames with hands)" in report.headline()[-1]
    report = ScoreReport(None, None, "A", frames[2:3], summarize_frames(frames[2:3]), [], False)
    assert report.summary["hands"]["repainted"] is None and report.headline()[-1] == "hands: none in front of the face"


def test_spread_picks_evenly_spaced_frames():
    assert spread(10, 100) == set(range(10))
    assert spread(100, 3) == {0, 50, 99}
    assert spread(0, 5) == set()
