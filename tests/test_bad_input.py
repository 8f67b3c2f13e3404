"""Each bad input of the foundation issue: a typed error naming the file, exit code 2, input bytes unchanged."""
import json
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facewright.cli import main
from facewright.errors import (
    ImageTooLargeError,
    InputNotFoundError,
    InvalidMediaError,
    NoVideoStreamError,
    OutputError,
    TruncatedMediaError,
    UnsupportedFormatError,
)
from facewright.media import read_image, read_video, write_image
from facewright.media.transcode import transcode
from tests.conftest import file_digest
from tests.media.helpers import write_clip


def _png_header_only(path, width, height):
    """A PNG whose header claims width x height: enough for the size check, no pixels needed."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))


def make_case(name, tmp_path, sample):
    """Build the bad input; return (path, reader to call, expected error type)."""
    if name == "missing":
        return tmp_path / "nope.mp4", read_video, InputNotFoundError
    if name == "folder":
        (tmp_path / "clips").mkdir()
        return tmp_path / "clips", read_video, InputNotFoundError
    if name == "zero-byte":
        (tmp_path / "empty.mp4").write_bytes(b"")
        return tmp_path / "empty.mp4", read_video, InvalidMediaError
    if name == "truncated":  # index (moov) at the front: the first half decodes
        data = sample("WolfgangLanger_Pexels.mp4").read_bytes()
        (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])
        return tmp_path / "half.mp4", read_video, TruncatedMediaError
    if name == "truncated-index-at-end":  # the usual layout: the cut took the index with it
        data = sample("single_face.mp4").read_bytes()
        (tmp_path / "half_single.mp4").write_bytes(data[: len(data) // 2])
        return tmp_path / "half_single.mp4", read_video, TruncatedMediaError
    if name == "audio-only":
        write_clip(tmp_path / "both.mp4", list(range(0, 3 * 512, 512)), __import__("fractions").Fraction(1, 15360),
                   audio="aac")
        import av
        with av.open(str(tmp_path / "both.mp4")) as src, av.open(str(tmp_path / "voice.m4a"), "w") as dst:
            out = dst.add_stream_from_template(src.streams.audio[0])
            for packet in src.demux(src.streams.audio[0]):
                if packet.size:
                    packet.stream = out
                    dst.mux(packet)
        return tmp_path / "voice.m4a", read_video, NoVideoStreamError
    if name == "text-as-mp4":
        (tmp_path / "notes.mp4").write_text("these are my notes, not a video\n" * 20)
        return tmp_path / "notes.mp4", read_video, InvalidMediaError
    if name == "unsupported-image":
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "anim.gif")
        return tmp_path / "anim.gif", read_image, UnsupportedFormatError
    if name == "huge-image":
        _png_header_only(tmp_path / "huge.png", 12000, 9000)  # 108 MP
        return tmp_path / "huge.png", read_image, ImageTooLargeError
    if name == "huge-png-header":  # far past PIL's own limit: refused while the header is read
        _png_header_only(tmp_path / "giant.png", 100000, 100000)
        return tmp_path / "giant.png", read_image, ImageTooLargeError
    if name == "truncated-jpeg":
        data = sample("single_face.jpg").read_bytes()
        (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
        return tmp_path / "cut.jpg", read_image, InvalidMediaError
    if name == "corrupt-mid-stream":  # decodable, less three frames: not an error, what reads it must say so
        return corrupt_mid_stream(sample("single_face.mp4"), tmp_path / "damaged.mp4"), read_video, None
    raise AssertionError(name)


def corrupt_mid_stream(source, path):
    """A copy of `source` with three packets in the middle garbled past their NAL headers (3 of 72 frames lost)."""
    import av

    with av.open(str(source)) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
    data = bytearray(source.read_bytes())
    for packet in packets[30:33]:
        for i in range(packet.pos + 8, packet.pos + packet.size):
            data[i] = (data[i] * 7 + 13) & 255
    path.write_bytes(bytes(data))
    return path


CASES = ["missing", "folder", "zero-byte", "truncated", "truncated-index-at-end", "audio-only", "text-as-mp4",
         "unsupported-image", "huge-image"]


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gets_typed_error_and_is_untouched(name, tmp_path, sample):
    path, reader, error = make_case(name, tmp_path, sample)
    before = file_digest(path) if path.is_file() else None
    with pytest.raises(error) as caught:
        result = reader(path)
        list(result) if reader is read_video else None
    assert str(path) in str(caught.value) and caught.value.fix
    assert caught.value.exit_code == 2
    if before is not None:
        assert file_digest(path) == before


def test_truncated_video_yields_the_decodable_frames_first(tmp_path, sample):
    path, _, _ = make_case("truncated", tmp_path, sample)
    frames = []
    with pytest.raises(TruncatedMediaError) as caught:
        for frame in read_video(path):
            frames.append(frame.index)
    assert 200 < len(frames) < 472 and caught.value.decoded_frames == len(frames)
    assert caught.value.expected_frames == 472
    assert "472" in str(caught.value)


def test_huge_image_names_the_limit(tmp_path, sample):
    path, _, _ = make_case("huge-image", tmp_path, sample)
    with pytest.raises(ImageTooLargeError, match="100 MP limit"):
        read_image(path)


def test_truncated_before_the_index_names_the_cut_and_the_fix(tmp_path, sample):
    path, _, _ = make_case("truncated-index-at-end", tmp_path, sample)
    with pytest.raises(TruncatedMediaError, match="cut off before its index .moov. was written") as caught:
        list(read_video(path))
    assert caught.value.decoded_frames == 0 and caught.value.expected_frames is None
    assert "the file ends" in str(caught.value) and "re-copy the complete file" in caught.value.fix


@pytest.mark.parametrize("name", ["missing", "zero-byte", "truncated-index-at-end", "text-as-mp4"])
def test_cli_reports_bad_video_in_one_line_with_exit_2(name, tmp_path, sample, capsys):
    path, _, _ = make_case(name, tmp_path, sample)
    code = main(["probe", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and "fix:" in err and "Traceback" not in err


@pytest.mark.parametrize("name, problem", [("audio-only", "no video stream"),
                                           ("truncated", "truncated: the index lists 472 video frames")])
def test_cli_probe_describes_a_file_with_a_problem_then_exits_2(name, problem, tmp_path, sample, capsys):
    """probe prints what it found (audio streams, the frames present), and its exit code tells scripts."""
    path, _, _ = make_case(name, tmp_path, sample)
    code = main(["probe", str(path), "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert any(p.startswith(problem) for p in json.loads(captured.out)["problems"])
    assert f"{path}: {problem}" in captured.err and "Traceback" not in captured.err


def test_probe_reports_truncation_and_goes_on_past_a_bad_file(tmp_path, sample, capsys):
    path, _, _ = make_case("truncated", tmp_path, sample)
    good = sample("single_face.mp4")
    code = main(["probe", str(tmp_path / "missing.mp4"), str(path), str(good)])
    captured = capsys.readouterr()
    assert code == 2  # bad files in the batch, and every file was still described
    assert "truncated: the index lists 472 video frames, the file holds" in captured.out
    assert f"{good}  (" in captured.out and "72 frames" in captured.out
    assert "missing.mp4: no such file" in captured.err


def test_output_equal_to_input_is_refused(tmp_path, sample):
    source = tmp_path / "clip.mp4"
    shutil.copy(sample("single_face.mp4"), source)
    before = file_digest(source)
    with pytest.raises(OutputError, match="never overwrites its inputs"):
        transcode(source, source)
    with pytest.raises(OutputError):
        transcode(source, tmp_path / "." / "clip.mp4")
    image = tmp_path / "face.png"
    write_image(np.zeros((4, 4, 3), np.uint8), image)
    with pytest.raises(OutputError):
        write_image(np.ones((4, 4, 3), np.uint8), image, inputs=(image,))
    assert file_digest(source) == before
    assert read_image(image).max() == 0


@pytest.mark.parametrize("name, problem", [("huge-png-header", "image over the 100 MP limit"),
                                           ("truncated-jpeg", "image data is truncated or corrupt")])
def test_cli_probe_reports_a_bad_image_as_a_problem(name, problem, tmp_path, sample, capsys):
    """FFmpeg reads a cut-off JPEG without a word and gives a 100000x100000 PNG as 0x0: probe asks read_image."""
    path, _, _ = make_case(name, tmp_path, sample)
    code = main(["probe", str(path)])
    captured = capsys.readouterr()
    assert code == 2 and f"  problem: {problem}" in captured.out and "problems: none" not in captured.out
    assert f"{path}: {problem}" in captured.err
    main(["probe", str(sample("single_face.jpg"))])
    assert "572x562" in capsys.readouterr().out  # a good image: its size, no problem


def test_mark_of_a_video_damaged_mid_stream_warns_with_the_frame_counts(tmp_path, sample, capsys):
    path, _, _ = make_case("corrupt-mid-stream", tmp_path, sample)
    out = tmp_path / "marked.mp4"
    assert main(["mark", str(path), str(out), "--workspace", str(tmp_path / "ws")]) == 0  # every decodable frame
    err = capsys.readouterr().err
    assert f"warning: {path}: 3 frame(s) could not be decoded (3 damaged packet(s) skipped)" in err
    assert "the output has 69 of the input's 72 frames" in err
    assert sum(1 for _ in read_video(out)) == 69


def test_an_output_that_is_a_folder_is_refused_before_the_work(tmp_path, sample, monkeypatch, capsys):
    (tmp_path / "out.mp4").mkdir()
    monkeypatch.setattr("facewright.provenance.mark.transcode", _never)
    assert main(["mark", str(sample("single_face.mp4")), str(tmp_path / "out.mp4"),
                 "--workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'out.mp4'}: the output path is an existing folder" in err and "fix:" in err


def _never(*args, **kwargs):
    raise AssertionError("the work started before the output was checked")


def test_a_full_disk_while_encoding_exits_2_naming_the_file_and_leaves_nothing(tmp_path, sample, full_disk, capsys):
    out = tmp_path / "out" / "marked.mp4"
    assert main(["mark", str(sample("single_face.mp4")), str(out), "--workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert f"{out}: the disk is full (" in err and " MB free in " in err and "internal error" not in err
    assert list(out.parent.iterdir()) == []  # no output, no partial file, no temporary folder


def test_extract_of_a_batch_shows_every_bad_files_error(tmp_path, sample, capsys):
    """Two unreadable files and one without a face: the error about the face must not hide the other two."""
    from datetime import timedelta

    from facewright import api
    from facewright.provenance.consent import utc_today

    root = tmp_path / "ws"
    api.consent_add("man", photo=sample("single_face.jpg"), role="both", purpose="testing bad batches of extract",
                    channels=["tests"], expires=(utc_today() + timedelta(days=10)).isoformat(), workspace=root)
    (tmp_path / "notes.mp4").write_text("these are my notes, not a video\n" * 20)
    (tmp_path / "scan.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    voice, _, _ = make_case("audio-only", tmp_path, sample)
    shutil.copy(voice, tmp_path / "voice.mp4")  # an MP4 that holds only sound
    code = main(["extract", str(tmp_path / "notes.mp4"), str(tmp_path / "scan.jpg"), str(tmp_path / "voice.mp4"),
                 str(sample("no_face.mp4")), "--identity", "man", "--every", "10", "--workspace", str(root)])
    err = capsys.readouterr().err
    assert code == 2 and "no face found in no_face.mp4; 3 other file(s) could not be read" in err
    assert f"{tmp_path / 'notes.mp4'}: not a media file FFmpeg can read" in err
    assert f"{tmp_path / 'scan.jpg'}: not an image facewright can read" in err
    assert f"{tmp_path / 'voice.mp4'}: no video stream (audio only?)" in err and "internal error" not in err


def test_extract_of_a_video_cut_short_says_how_many_frames_it_lacks(tmp_path, sample, capsys):
    from datetime import timedelta

    from facewright import api
    from facewright.media import write_image
    from facewright.provenance.consent import utc_today

    path, _, _ = make_case("truncated", tmp_path, sample)  # its index lists 472 frames; about half are there
    root = tmp_path / "ws"
    photo = write_image(next(iter(read_video(sample("WolfgangLanger_Pexels.mp4")))).image, tmp_path / "w.png")
    api.consent_add("wolfgang", photo=photo, role="both", purpose="testing a video cut short", channels=["tests"],
                    expires=(utc_today() + timedelta(days=10)).isoformat(), workspace=root)
    before = path.read_bytes()
    assert main(["extract", str(path), "--identity", "wolfgang", "--every", "12", "--workspace", str(root)]) == 0
    out = capsys.readouterr().out
    held = len(list(read_video(path, strict=False)))
    assert 0 < held < 472 and f"warning: truncated: the index lists 472 video frames, the file holds {held}" in out
    assert path.read_bytes() == before
