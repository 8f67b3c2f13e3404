"""The invisible watermark against the attacks of the issue's bar, on real photos and video frames."""
from __future__ import annotations

import numpy as np
import pytest

from facewright.bench.watermark import brighten, center_crop, h264, jpeg, resize_and_back
from facewright.errors import OptionError
from facewright.media.image import read_image
from facewright.media.video import read_video
from facewright.provenance import watermark as wm

PAYLOAD = 0x0123456789ABCDEF


@pytest.fixture(scope="module")
def astronaut(sample):
    return read_image(sample("astronaut.png"))


@pytest.fixture(scope="module")
def marked(astronaut):
    return wm.embed(astronaut, PAYLOAD)


@pytest.fixture(scope="module")
def clip(sample):
    frames = read_video(sample("WolfgangLanger_Pexels.mp4"))
    return [next(frames).image for _ in range(24)]


def test_embed_is_invisible_enough_and_leaves_the_input_alone(astronaut, marked):
    before = astronaut.copy()
    again = wm.embed(astronaut, PAYLOAD)
    np.testing.assert_array_equal(astronaut, before)
    np.testing.assert_array_equal(again, marked)  # deterministic for a payload
    assert wm.psnr(astronaut, marked) >= 38.0


def test_clean_marked_photo_decodes(marked):
    result = wm.detect(marked)
    assert result.found and result.payload == PAYLOAD and result.payload_hex == "0123456789abcdef"
    assert result.bit_accuracy > 0.98 and result.p_value < wm.P_THRESHOLD


@pytest.mark.parametrize("attack", [jpeg, resize_and_back, center_crop, brighten],
                         ids=["jpeg50", "resize50", "crop80", "bright20"])
def test_payload_survives_each_attack(marked, attack):
    result = wm.detect(attack(marked))
    assert result.found and result.payload == PAYLOAD


def test_crop_off_the_tile_grid_and_half_size_copy(marked):
    odd_crop = marked[37:37 + 301, 53:53 + 389]  # offsets that are not multiples of the tile or cell
    assert wm.detect(odd_crop).payload == PAYLOAD
    half = resize_and_back(marked)[::1]
    small = np.ascontiguousarray(half[::2, ::2])
    found = wm.detect(small)
    assert found.payload == PAYLOAD and found.scale == 0.5


@pytest.mark.parametrize("name", ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "multi_face.jpg"])
def test_unmarked_photos_are_not_flagged(sample, name):
    result = wm.detect(read_image(sample(name)))
    assert not result.found and result.payload is None
    assert result.p_value > wm.P_THRESHOLD


def test_a_different_payload_decodes_as_itself(astronaut):
    other = 0xFEDCBA9876543210
    assert wm.detect(wm.embed(astronaut, other)).payload == other


def test_video_survives_h264_crf28(clip):
    marked = h264([wm.embed(frame, PAYLOAD) for frame in clip], crf=28)
    result = wm.detect_frames(marked)
    assert result.found and result.payload == PAYLOAD and result.frames == len(clip)


def test_video_evidence_adds_up_over_frames(clip):
    # Noise this strong (independent per frame) hides the mark in any one frame; 24 frames recover it.
    rng = np.random.default_rng(0)
    noisy = [np.clip(wm.embed(f, PAYLOAD) + rng.normal(0, 100, f.shape), 0, 255).astype(np.uint8) for f in clip]
    assert sum(wm.detect(frame, scales=(1.0,)).found for frame in noisy[:6]) == 0
    result = wm.detect_frames(noisy, scales=(1.0,))
    assert result.found and result.payload == PAYLOAD


def test_accuracy_against_a_known_truth(marked):
    result = wm.detect(marked)
    assert result.accuracy_against(PAYLOAD) == 1.0
    assert result.accuracy_against(PAYLOAD ^ 0b111) == pytest.approx(61 / 64)


@pytest.mark.parametrize("payload", [-1, 1 << 64])
def test_payload_outside_64_bits_is_refused(astronaut, payload):
    with pytest.raises(OptionError):
        wm.embed(astronaut, payload)
