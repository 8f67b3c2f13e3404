import dlib
import numpy as np
import pytest

from facewright.assets import asset_path
from facewright.faces.detect import create_detector
from facewright.faces.landmarks import MESH_TO_68, Landmarker, yaw_pitch_roll
from facewright.media import read_image, read_video


@pytest.fixture(scope="module")
def landmarker():
    with Landmarker() as model:
        yield model


@pytest.fixture(scope="module")
def portraits(sample):
    from skimage import data

    return {"astronaut": data.astronaut(), "single_face": read_image(sample("single_face.jpg"))}


@pytest.mark.parametrize("photo", ["astronaut", "single_face"])
def test_one_face_landmarks_inside_the_box_and_frontal(photo, portraits, landmarker):
    image = portraits[photo]
    [face] = landmarker.detect(image)
    with create_detector("blazeface") as detector:
        [det] = detector.detect(image)
    assert face.points.shape == (478, 3) and face.points.dtype == np.float32
    inner = face.points68()[17:]  # brows, nose, eyes, mouth: inside any detector's box
    margin = 0.1 * det.width
    assert ((inner >= det.box[:2] - margin) & (inner <= det.box[2:] + margin)).all()
    yaw, pitch, roll = face.yaw_pitch_roll
    assert abs(yaw) < 15 and abs(pitch) < 25 and abs(roll) < 20


def test_mirroring_negates_yaw_and_roll(portraits, landmarker):
    image = portraits["single_face"]
    [face] = landmarker.detect(image)
    [mirrored] = landmarker.detect(np.ascontiguousarray(image[:, ::-1]))
    (y1, p1, r1), (y2, p2, r2) = face.yaw_pitch_roll, mirrored.yaw_pitch_roll
    assert abs(y1 + y2) < 3 and abs(r1 + r2) < 3 and abs(p1 - p2) < 3
    assert abs(y1) > 2  # the portrait is slightly turned, so the sign test means something


def test_yaw_pitch_roll_of_known_rotations():
    def rot_y(deg):
        a = np.radians(deg)
        return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])

    def rot_x(deg):
        a = np.radians(deg)
        return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])

    def rot_z(deg):
        a = np.radians(deg)
        return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])

    pose = np.eye(4)
    pose[:3, :3] = 1.3 * rot_y(30) @ rot_x(-10) @ rot_z(5)  # a scale must not matter
    assert np.allclose(yaw_pitch_roll(pose), (30, -10, 5))


def test_68_point_layout_agrees_with_dlib(portraits, landmarker):
    image = portraits["single_face"]
    [face] = landmarker.detect(image)
    predictor = dlib.shape_predictor(str(asset_path("shape_predictor_68_face_landmarks.dat")))
    [rect] = dlib.get_frontal_face_detector()(image, 1)
    shape = predictor(image, rect)
    reference = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float32)
    eyes = np.linalg.norm(reference[36:42].mean(0) - reference[42:48].mean(0))
    error = np.linalg.norm(face.points68() - reference, axis=1) / eyes
    assert len(set(MESH_TO_68.tolist())) == 68
    assert np.median(error[17:]) < 0.08 and error.max() < 0.3


def test_blendshapes(portraits, landmarker):
    [face] = landmarker.detect(portraits["single_face"])
    assert len(face.blendshape_names) == 52 and {"eyeBlinkLeft", "jawOpen"} <= set(face.blendshape_names)
    assert ((face.blendshapes >= 0) & (face.blendshapes <= 1)).all()
    assert 0 <= face.eyes_closed < 0.6 and 0 <= face.mouth_open <= 1


def test_small_faces_in_a_group_photo_via_boxes(sample, landmarker):
    image = read_image(sample("multi_face.jpg"))
    with create_detector("blazeface-full") as detector:
        boxes = [d.box for d in detector.detect(image)]
    faces = [landmarker.detect_in_box(image, box) for box in boxes]
    assert len(faces) == 5 and all(f is not None for f in faces)
    for face, box in zip(faces, boxes, strict=True):
        center = face.points68()[30]  # nose tip
        assert box[0] < center[0] < box[2] and box[1] < center[1] < box[3]
    assert landmarker.detect_in_box(np.full((300, 300, 3), 128, np.uint8), np.array([50, 50, 250, 250])) is None


def test_video_mode_tracks_frames(sample):
    frames = list(read_video(sample("single_face.mp4")))[:24]
    with Landmarker(video=True, max_faces=1) as tracker:
        counts = [len(tracker.detect(f.image, f.time * 1000)) for f in frames]
        assert len(tracker.detect(frames[-1].image, frames[-1].time * 1000)) == 1  # a repeated time is nudged
    assert counts == [1] * len(frames)
