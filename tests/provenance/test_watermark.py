"""The invisible watermark against the attacks of the issue's bar, on real photos and video frames."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from facewright.bench.watermark import (
    brighten,
    center_crop,
    h264,
    jpeg,
    mirror,
    resize,
    resize_and_back,
    rotate_cropped,
    turn,
)
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
    small = resize(marked, 0.5)  # 256 px: the pattern at half its size, so it is searched
    assert wm.detect(small, search=False).payload is None
    found = wm.detect(small)
    assert found.payload == PAYLOAD and found.scale == pytest.approx(0.5, rel=0.01)


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
    assert sum(wm.detect(frame, search=False).found for frame in noisy[:6]) == 0
    result = wm.detect_frames(noisy, search=False)
    assert result.found and result.payload == PAYLOAD


def test_accuracy_against_a_known_truth(marked):
    result = wm.detect(marked)
    assert result.accuracy_against(PAYLOAD) == 1.0
    assert result.accuracy_against(PAYLOAD ^ 0b111) == pytest.approx(61 / 64)


@pytest.mark.parametrize("payload", [-1, 1 << 64])
def test_payload_outside_64_bits_is_refused(astronaut, payload):
    with pytest.raises(OptionError):
        wm.embed(astronaut, payload)


def test_every_flip_and_quarter_turn_is_found_and_told_apart(marked):
    orientations = set()
    for quarters in range(4):
        for flip in (False, True):
            copy = mirror(turn(marked, quarters)) if flip else turn(marked, quarters)
            result = wm.detect(copy, search=False)  # the expected size suffices: all eight are searched
            assert result.found and result.payload == PAYLOAD and result.mirrored == flip
            assert flip or result.rotation == (0.0, 90.0, 180.0, -90.0)[quarters]
            orientations.add(result.orientation)
    assert orientations == set(range(8))


@pytest.mark.parametrize("degrees", [5.0, -3.0, 1.5])
def test_small_rotations_with_the_edges_cropped_are_found_by_the_lattice_search(marked, degrees):
    copy = rotate_cropped(marked, degrees)
    assert not wm.detect(copy, search=False).found
    result = wm.detect(copy)
    assert result.found and result.payload == PAYLOAD
    assert abs(result.rotation - degrees) < 0.5 and not result.mirrored


def test_pattern_follows_the_picture_size_so_a_1080p_copy_served_at_360p_reads_directly(clip):
    master = [cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_CUBIC) for f in clip[:8]]
    marked = [wm.embed(f, PAYLOAD) for f in master]
    served = [resize(f, 1 / 3) for f in marked]  # 640x360, never scaled back up
    result = wm.detect_frames(served, search=False)
    assert result.found and result.payload == PAYLOAD and result.scale == pytest.approx(1.0)
    big, small = wm._frame_delta(PAYLOAD, 3.0, 1080, 1920), wm._frame_delta(PAYLOAD, 3.0, 360, 640)
    shrunk = cv2.resize(big.astype(np.float32), (640, 360), interpolation=cv2.INTER_AREA)
    assert np.corrcoef(shrunk.ravel(), small.ravel())[0, 1] > 0.9


def test_video_survives_h264_crf40(clip):
    marked = h264([wm.embed(frame, PAYLOAD) for frame in clip], crf=40)
    result = wm.detect_frames(marked)
    assert result.found and result.payload == PAYLOAD


@pytest.mark.parametrize("name", ["grass.png", "gravel.png", "brick.png", "text.png", "page.png"])
def test_textures_and_text_are_not_flagged_even_by_the_lattice_search(sample, name):
    picture = read_image(sample(name))
    for copy in (picture, resize(picture, 0.5)):
        result = wm.detect(copy)
        assert not result.found and result.p_value > wm.P_THRESHOLD


def test_a_sync_peak_without_a_valid_payload_is_not_a_mark(astronaut):
    # The sync pattern alone, strongly: the peak is certain, but the payload cells carry no codeword.
    sync = wm._smooth_cells(wm._layout().sync)
    pattern = np.tile(sync / np.sqrt(np.mean(sync**2)) * 3.0, (3, 3))[:360, :360]  # 360 px: drawn as detected
    picture = np.clip(astronaut[:360, :360] + pattern[:, :, None], 0, 255).astype(np.uint8)
    result = wm.detect(picture, search=False)
    assert result.z_score > 8 and not result.found and result.payload is None


def test_frames_of_another_size_are_left_out_of_the_sum(clip):
    acc = wm.Accumulator()
    for frame in clip[:4]:
        acc.add(wm.embed(frame, PAYLOAD))
    acc.add(resize(clip[4], 0.5))
    assert acc.frames == 4 and acc.result().payload == PAYLOAD


@pytest.mark.filterwarnings("error")
def test_a_picture_too_small_for_two_tiles_is_searched_quietly(astronaut):
    result = wm.detect(resize(wm.embed(astronaut, PAYLOAD), 64 / 512))
    assert not result.found and result.frames == 1


def test_a_1080p_file_marked_with_the_earlier_fixed_size_pattern_is_still_read(clip):
    # Before the pattern followed the picture's size it had 4 px cells at every size.
    old = np.tile(wm.tile_pattern(PAYLOAD) * wm.STRENGTH, (9, 15))[:1080, :1920]
    frames = [np.clip(cv2.resize(f, (1920, 1080)) + np.rint(old)[:, :, None], 0, 255).astype(np.uint8)
              for f in clip[:8]]
    result = wm.detect_frames(frames)
    assert result.found and result.payload == PAYLOAD and result.scale == pytest.approx(1 / 3, abs=1e-3)
    assert result.p_value < wm.P_THRESHOLD


def test_every_mark_found_is_below_the_threshold_and_counts_its_decodes(marked):
    direct = wm.detect(marked)
    turned = wm.detect(rotate_cropped(marked, 4))
    assert direct.found and turned.found
    assert direct.p_value < wm.P_THRESHOLD and turned.p_value < wm.P_THRESHOLD
