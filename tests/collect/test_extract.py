"""Extraction on the real sample media (issue 3's cases)."""
import shutil
from itertools import islice

import numpy as np
import pytest
from PIL import Image

from facewright.collect.extract import extract
from facewright.collect.report import pose_plot, prune, sheet_of_faces, summarize
from facewright.collect.tracks import load_track
from facewright.config import ExtractOptions
from facewright.errors import InputError, NoFaceError
from facewright.faces.detect import create_detector
from facewright.faces.identity import IdentityEncoder, pairwise_distance
from facewright.media import VideoReader, VideoWriter, read_image
from facewright.workspace import Workspace


@pytest.fixture(scope="module")
def wolfgang(sample, tmp_path_factory):
    """WolfgangLanger_Pexels.mp4 extracted once, no sampling, default de-duplication."""
    ws = Workspace.init(tmp_path_factory.mktemp("ws"))
    report = extract([sample("WolfgangLanger_Pexels.mp4")], "wolfgang", ws)
    yield ws, report
    ws.close()


@pytest.mark.slow
def test_video_one_identity_faces_in_most_frames(wolfgang):
    ws, report = wolfgang
    [source] = report.inputs
    assert source.frames == 472 and source.frames_with_face >= 440
    assert report.other_identities == [] and "other identity" not in report.counts
    assert source.rejected["duplicate"] > 100 and source.kept > 40  # duplicates removed, variety kept
    kept = ws.conn.execute("SELECT crop_path, mask_path, embedding, landmarks, matrix FROM faces "
                           "WHERE status = 'kept'").fetchall()
    assert len(kept) == source.kept
    crop = read_image(report.folder / kept[0]["crop_path"])
    mask = read_image(report.folder / kept[0]["mask_path"])
    assert crop.shape == mask.shape == (256, 256, 3) and 0.2 < (mask[..., 0] > 127).mean() < 0.9
    assert len(kept[0]["embedding"]) == 128 * 4 and len(kept[0]["landmarks"]) == 478 * 3 * 4
    assert len(kept[0]["matrix"]) == 6 * 8


def test_rerun_adds_nothing_new(wolfgang, sample):
    ws, first = wolfgang
    again = extract([sample("WolfgangLanger_Pexels.mp4")], "wolfgang", ws)
    assert again.inputs[0].skipped and again.counts == first.counts


def test_faceset_reports_and_prune(wolfgang):
    ws, report = wolfgang
    summary = summarize(ws, "wolfgang")
    assert summary.kept == report.counts["kept"] and summary.rejected["duplicate"] > 0
    assert sheet_of_faces(ws, "wolfgang", count=16).shape[1] == 8 * 128
    assert pose_plot(ws, "wolfgang").shape == (2 * 60 * 4 + 40, 2 * 90 * 4 + 60, 3)
    first = ws.conn.execute("SELECT crop_path FROM faces WHERE status = 'kept' ORDER BY id").fetchone()[0]
    (report.folder / first).unlink()  # the user deletes a bad crop in a file browser
    (report.folder / "faces" / "leftover.png").write_bytes(b"partial")
    result = prune(ws, "wolfgang")
    assert (result.missing_files, result.orphan_files) == (1, 1)
    assert summarize(ws, "wolfgang").rejected["removed by user"] == 1
    damaged = report.folder / ws.conn.execute("SELECT crop_path FROM faces WHERE status = 'kept' ORDER BY id"
                                              ).fetchone()[0]
    damaged.write_text("overwritten by another program")  # the sheet always shows the first kept face
    with pytest.raises(InputError, match="a crop of faceset 'wolfgang' cannot be read") as caught:
        sheet_of_faces(ws, "wolfgang", count=16)
    assert caught.value.path == damaged and caught.value.fix == "delete it, then run: facewright faceset prune wolfgang"
    damaged.unlink()
    assert prune(ws, "wolfgang").missing_files == 1 and sheet_of_faces(ws, "wolfgang", count=16).shape[1] == 8 * 128


def _separate_face(image):
    """The box of the face farthest (in identity) from all the others: a fair reference."""
    with create_detector("blazeface-full") as detector:
        boxes = [d.box for d in detector.detect(image)]
    embeddings = IdentityEncoder().embed_many(image, boxes)
    distances = pairwise_distance(embeddings, embeddings) + np.eye(len(boxes)) * 9
    return boxes[int(distances.min(axis=1).argmax())], len(boxes)


def test_group_photo_with_reference_keeps_only_that_person(sample, tmp_path):
    photo = sample("multi_face.jpg")
    image = read_image(photo)
    box, found = _separate_face(image)
    x0, y0, x1, y1 = box.astype(int)
    pad = int(0.6 * (x1 - x0))
    reference = tmp_path / "reference.png"
    Image.fromarray(image[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad]).save(reference)
    with Workspace.init(tmp_path / "ws") as ws:
        report = extract([photo], "one", ws, ExtractOptions(reference=str(reference), min_face=40))
        kept = ws.conn.execute("SELECT box FROM faces WHERE status = 'kept'").fetchall()
    assert found == 5 and report.counts["other identity"] == 4 and len(kept) == 1
    kept_box = np.frombuffer(kept[0][0], np.float32)
    assert np.abs(kept_box[:2] - box[:2]).max() < 0.3 * (x1 - x0)


def test_group_photo_without_reference_keeps_largest_cluster(sample, tmp_path):
    with Workspace.init(tmp_path) as ws:
        report = extract([sample("multi_face.jpg")], "crowd", ws, ExtractOptions(min_face=40))
    # dlib puts two of the five people within its 0.6 threshold: they form the largest cluster.
    assert report.counts["kept"] == 2 and report.other_identities == [1, 1, 1]


def test_no_face_anywhere_writes_nothing(sample, tmp_path):
    with Workspace.init(tmp_path) as ws:
        with pytest.raises(NoFaceError, match="no face found in no_face.mp4") as caught:
            extract([sample("no_face.mp4")], "nobody", ws)
        assert ws.conn.execute("SELECT COUNT(*) FROM facesets").fetchone()[0] == 0
    assert caught.value.exit_code == 2 and not (tmp_path / "facesets").exists()


def test_faces_only_in_face_segments(sample, tmp_path):
    with Workspace.init(tmp_path) as ws:
        extract([sample("face_noface.mov"), sample("noface_face.mov")], "cut", ws, ExtractOptions(dedupe=0))
        rows = ws.conn.execute("SELECT m.path, f.frame_index FROM faces f JOIN media m ON m.id = f.media_id "
                               "WHERE f.status = 'kept'").fetchall()
    first = [i for path, i in rows if path.endswith("face_noface.mov")]
    second = [i for path, i in rows if path.endswith("noface_face.mov")]
    assert len(first) > 60 and max(first) < 72  # the face, then the cartoon
    assert len(second) > 60 and min(second) >= 90


def test_too_small_everywhere_is_a_clear_error(sample, tmp_path):
    with Workspace.init(tmp_path) as ws, pytest.raises(NoFaceError, match="too small") as caught:
        extract([sample("single_face.jpg")], "tiny", ws, ExtractOptions(min_face=5000))
    assert "--min-face" in caught.value.fix


def test_huge_photo_and_a_bad_file_in_the_batch(sample, tmp_path):
    canvas = np.full((8000, 12000, 3), 120, np.uint8)
    face = read_image(sample("single_face.jpg"))
    canvas[3000:3000 + face.shape[0], 9000:9000 + face.shape[1]] = face
    Image.fromarray(canvas).save(tmp_path / "huge.jpg", quality=90)
    del canvas
    (tmp_path / "broken.mp4").write_text("not a video")
    with Workspace.init(tmp_path / "ws") as ws:
        report = extract([tmp_path / "huge.jpg", tmp_path / "broken.mp4"], "big", ws)
    by_name = {s.path.name: s for s in report.inputs}
    assert by_name["huge.jpg"].kept == 1
    assert "broken.mp4" in by_name["broken.mp4"].error


def test_for_swap_stores_per_frame_geometry(sample, tmp_path):
    video = tmp_path / "clip.mp4"
    shutil.copy(sample("single_face.mp4"), video)
    with Workspace.init(tmp_path / "ws") as ws:
        extract([video], "man", ws, ExtractOptions(for_swap=True, every=8))
        [row] = ws.conn.execute("SELECT first_frame, last_frame, frames, arrays_path FROM tracks").fetchall()
        arrays = load_track(ws.root / row["arrays_path"])
    assert (row["first_frame"], row["last_frame"], row["frames"]) == (0, 71, 72)  # every frame, not every 8th
    assert arrays["landmarks"].shape == (72, 478, 3) and arrays["pose"].shape == (72, 4, 4)
    assert arrays["embeddings"].shape[1] == 128 and list(arrays["frames"]) == list(range(72))


def test_corrupt_frames_mid_video_are_skipped_and_counted(sample, tmp_path):
    import av

    source = sample("single_face.mp4")
    with av.open(str(source)) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
    data = bytearray(source.read_bytes())
    for packet in packets[30:33]:  # garble three frames in the middle, past their NAL headers
        for i in range(packet.pos + 8, packet.pos + packet.size):
            data[i] = (data[i] * 7 + 13) & 255
    (tmp_path / "corrupt.mp4").write_bytes(bytes(data))
    with Workspace.init(tmp_path / "ws") as ws:
        report = extract([tmp_path / "corrupt.mp4"], "man", ws)
    [source_report] = report.inputs
    assert source_report.corrupt_frames == 3 and source_report.error is None
    assert source_report.frames == 69 and source_report.frames_with_face >= 60 and source_report.kept >= 1


def _first_frames(source, path, count):
    """The first `count` frames of `source` re-encoded with their timestamps: a short real clip."""
    with VideoReader(source) as reader, VideoWriter(path, width=reader.stream.width, height=reader.stream.height,
                                                    fps=reader.fps, time_base=reader.time_base) as writer:
        for frame in islice(reader, count):
            writer.write(frame.image, frame.pts)
    return path


def test_rerun_with_other_sampling_adds_or_replaces_and_never_loses_a_face(sample, tmp_path):
    """--every 3 after --every 1 meets faces the first run kept: none may become its own duplicate."""
    clip = _first_frames(sample("WolfgangLanger_Pexels.mp4"), tmp_path / "wolf90.mp4", 90)
    kept = "SELECT frame_index, face_index FROM faces WHERE status = 'kept'"
    with Workspace.init(tmp_path / "ws") as ws:
        first = extract([clip], "wolf", ws, ExtractOptions(every=1, size=64))
        before = {tuple(row) for row in ws.conn.execute(kept)}
        again = extract([clip], "wolf", ws, ExtractOptions(every=3, size=64))
        after = {tuple(row) for row in ws.conn.execute(kept)}
        rows = ws.conn.execute("SELECT crop_path, mask_path FROM faces WHERE status = 'kept'").fetchall()
    [source] = again.inputs
    assert len(before) >= 10 and not source.skipped and source.frames == 30
    assert {key for key in before if key[0] % 3 == 0} and before <= after  # the ones met again are kept too
    assert again.counts["kept"] == len(after) >= first.counts["kept"]
    named = {path for row in rows for path in row}
    on_disk = {str(p.relative_to(first.folder)) for sub in ("faces", "masks") for p in (first.folder / sub).iterdir()}
    assert len(rows) == len(after) and named == on_disk  # every kept face's files, and no orphan


def test_a_contact_sheet_of_no_faces_is_an_option_error(tmp_path):
    from facewright import api
    from facewright.errors import OptionError

    for count in (0, -5, 2.5, True):
        with pytest.raises(OptionError, match="at least 1"):
            api.show_faceset("ben", count=count, workspace=tmp_path / "ws")
