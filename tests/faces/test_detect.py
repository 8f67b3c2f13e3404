import numpy as np
import pytest

from facewright.errors import OptionError
from facewright.faces.boxes import box_containment, box_iou
from facewright.faces.detect import create_detector, detector_names, nms, tiles
from facewright.faces.types import Detection
from facewright.media import read_image


@pytest.fixture(scope="module")
def photos(sample):
    from skimage import data

    return {"astronaut": data.astronaut(), "single_face": read_image(sample("single_face.jpg")),
            "multi_face": read_image(sample("multi_face.jpg"))}


@pytest.mark.parametrize("name", detector_names())
@pytest.mark.parametrize("photo", ["astronaut", "single_face"])
def test_every_detector_finds_the_one_face(name, photo, photos):
    image = photos[photo]
    with create_detector(name) as detector:
        [face] = detector.detect(image)
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
    assert 60 < face.width < 400 and face.score > 0


def test_group_photo(photos):
    with create_detector("blazeface-full") as full, create_detector("dlib-hog") as hog:
        assert len(full.detect(photos["multi_face"])) == 5
        assert len(hog.detect(photos["multi_face"])) >= 4


def test_blazeface_keypoints_are_on_the_face(photos):
    with create_detector("blazeface") as detector:
        [face] = detector.detect(photos["single_face"])
    assert face.keypoints.shape == (6, 2)
    right_eye, left_eye = face.keypoints[0], face.keypoints[1]
    assert right_eye[0] < left_eye[0]  # the subject's right eye is on the image's left
    inside = (face.keypoints[:4] >= face.box[:2]) & (face.keypoints[:4] <= face.box[2:])
    assert inside.all()


def test_small_face_in_a_huge_photo_is_found(photos):
    """A 12000 x 8000 photo (96 MP) with one portrait pasted in: found by tiling, box in input pixels."""
    canvas = np.full((8000, 12000, 3), 90, np.uint8)
    face = photos["single_face"]
    canvas[5000:5000 + face.shape[0], 7000:7000 + face.shape[1]] = face
    with create_detector("blazeface-full") as detector:
        [found] = detector.detect(canvas)
        [direct] = detector.detect(face)
    assert np.abs(found.box - (direct.box + [7000, 5000, 7000, 5000])).max() < 25


def test_unknown_detector():
    with pytest.raises(OptionError, match="blazeface"):
        create_detector("yolo")


def test_tiles_cover_and_overlap():
    windows = tiles(1000, 2000, tile=768)
    covered = np.zeros((1000, 2000), bool)
    for x0, y0, x1, y1 in windows:
        assert x1 - x0 <= 768 and y1 - y0 <= 768
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    xs = sorted({w[0] for w in windows})
    assert all(b - a <= 768 * 3 // 4 for a, b in zip(xs, xs[1:], strict=False))
    assert tiles(500, 600) == [(0, 0, 600, 500)]


def test_box_overlaps_and_nms():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [2, 2, 6, 6], [20, 20, 30, 30]], np.float32)
    assert np.allclose(box_iou(a, b), [[50 / 150, 16 / 100, 0]])
    assert np.allclose(box_containment(a, b), [[0.5, 1.0, 0]])
    kept = nms([Detection(a[0], 0.9), Detection(b[1], 0.95), Detection(b[2], 0.5)])
    assert [d.score for d in kept] == [0.95, 0.5]  # the larger box contains the better one: dropped
