"""Temporal smoothing: One Euro on constant, noisy, fast and irregularly timed signals; tracks; scene cuts."""
from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest

from facewright.config import SwapOptions
from facewright.errors import OptionError
from facewright.media import read_video
from facewright.swap.smooth import CUT_THRESHOLD, OneEuroFilter, TrackSmoother, cut_score, is_cut, one_euro

FPS = 30
# Landmarks in face sizes (what the swap feeds the filter): 1 px of detector jitter on a 150 px face.
JITTER = 1 / 150


def test_a_constant_stays_constant():
    smoother = OneEuroFilter()
    value = np.random.default_rng(0).random((68, 2)).astype(np.float32)
    outputs = [smoother.filter(i / FPS, value) for i in range(60)]
    assert all(out.dtype == np.float32 and out.shape == (68, 2) for out in outputs)
    assert np.abs(np.stack(outputs) - value).max() < 1e-6


def test_jitter_around_a_still_face_is_reduced():
    rng = np.random.default_rng(1)
    noisy = 0.5 + JITTER * rng.standard_normal((300, 68, 2))
    smoothed = np.stack(one_euro(np.arange(300) / FPS, noisy, min_cutoff=1.0, beta=2.0))
    ratio = smoothed[30:].std(axis=0).mean() / noisy[30:].std(axis=0).mean()
    assert ratio < 0.5


def ramp_error(beta: float, speed: float = 3.0, frames: int = 20) -> float:
    """|output - input| after `frames` of a move at `speed` face sizes per second (a quick head turn)."""
    times = np.arange(frames + 1) / FPS
    return float(abs(one_euro(times, speed * times, min_cutoff=1.0, beta=beta)[-1] - speed * times[-1]))


def test_fast_motion_is_followed_without_the_lag_of_a_fixed_low_pass():
    assert ramp_error(beta=2.0) < 0.25 * ramp_error(beta=0.0)
    assert ramp_error(beta=2.0) < 0.1  # a tenth of the face size behind, where beta 0 trails ~0.45


def test_a_step_is_caught_up_within_a_few_frames_with_beta():
    times = np.arange(40) / FPS
    step = np.where(np.arange(40) >= 10, 1.0, 0.0)  # the face jumps by its own size
    fast = np.array(one_euro(times, step, min_cutoff=1.0, beta=2.0))
    slow = np.array(one_euro(times, step, min_cutoff=1.0, beta=0.0))
    assert abs(1 - fast[16]) < 0.5 * abs(1 - slow[16])


def test_variable_frame_intervals_follow_time_not_frame_count():
    # In steady state a low-pass at fc Hz trails a ramp by tau = 1 / (2 pi fc) seconds, whatever the dt.
    rng = np.random.default_rng(2)
    times = np.cumsum(rng.uniform(0.02, 0.12, 100))  # 8-50 fps, 14 on average
    outputs = one_euro(times, times, min_cutoff=1.0, beta=0.0, d_cutoff=1.0)
    assert times[-1] > 4
    assert outputs[-1] == pytest.approx(times[-1] - 1 / (2 * math.pi), abs=0.01)


def test_time_must_move_forward_and_shapes_stay():
    smoother = OneEuroFilter()
    smoother.filter(1.0, np.zeros(3))
    with pytest.raises(ValueError, match="not after"):
        smoother.filter(1.0, np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        smoother.filter(2.0, np.zeros(4))


def test_bad_parameters_are_option_errors():
    for options in ({"min_cutoff": 0}, {"beta": -1}, {"d_cutoff": -2}):
        with pytest.raises(OptionError):
            OneEuroFilter(**options)
    with pytest.raises(OptionError):
        TrackSmoother(min_cutoff=-1)


def test_reset_lets_the_next_value_through_unchanged():
    smoother = OneEuroFilter()
    for i in range(10):
        smoother.filter(i / FPS, np.zeros((2, 3)))
    smoother.reset()
    jump = np.full((2, 3), 5.0)
    assert np.array_equal(smoother.filter(0.0, jump), jump)  # and time may restart after a reset


def test_tracks_are_smoothed_apart_and_a_cut_forgets_them():
    smoother = TrackSmoother(min_cutoff=1.0, beta=0.0)  # no speed-up: the jump below stays smoothed
    for i in range(30):
        assert np.allclose(smoother.smooth("a", i / FPS, np.full((68, 2), 1.0)), 1.0)
        assert np.allclose(smoother.smooth(7, i / FPS, np.full((68, 2), 9.0)), 9.0)
    assert set(smoother.tracks) == {"a", 7}
    assert smoother.smooth("a", 30 / FPS, np.full((68, 2), 3.0)).max() < 2  # smoothed: not there yet
    smoother.cut()
    assert smoother.tracks == ()
    assert np.array_equal(smoother.smooth("a", 31 / FPS, np.full((68, 2), 3.0)), np.full((68, 2), 3.0))


def first_frames(path, count: int) -> list[np.ndarray]:
    return [frame.image for frame in itertools.islice(read_video(path), count)]


def test_consecutive_frames_of_a_real_clip_are_no_cut(sample):
    frames = first_frames(sample("WolfgangLanger_Pexels.mp4"), 48)
    scores = [cut_score(a, b) for a, b in itertools.pairwise(frames)]
    assert max(scores) < CUT_THRESHOLD / 3
    assert not any(is_cut(a, b) for a, b in itertools.pairwise(frames))
    assert cut_score(frames[0], frames[0]) == 0


def test_two_unrelated_clips_meet_at_a_cut(sample):
    first = first_frames(sample("WolfgangLanger_Pexels.mp4"), 1)[0]
    other = first_frames(sample("single_face.mp4"), 1)[0]
    other = cv2.resize(other, first.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert is_cut(first, other) and is_cut(other, first)
    assert cut_score(first, other) > 2 * CUT_THRESHOLD


def test_the_default_threshold_is_the_options_default():
    assert SwapOptions().cut_threshold == CUT_THRESHOLD
