"""Output files: normal permissions, and nothing left behind when opening a writer fails half-way."""
import os
import stat

import av
import av.error
import numpy as np
import pytest

from facewright.files import atomic_path
from facewright.media import VideoWriter, write_image
from facewright.media import audio as audio_module
from facewright.media.audio import AudioPassthrough, encoder_layout


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_outputs_get_a_plain_files_permissions(tmp_path, umask_022):
    with atomic_path(tmp_path / "notes.txt") as tmp:
        assert mode(tmp) == 0o644  # already while being written, not only after the rename
        tmp.write_text("hi\n")
    assert mode(tmp_path / "notes.txt") == 0o644
    with VideoWriter(tmp_path / "v.mp4", width=16, height=16, fps=25) as writer:
        writer.write(np.zeros((16, 16, 3), np.uint8))
    assert mode(tmp_path / "v.mp4") == 0o644
    assert mode(write_image(np.zeros((4, 4, 3), np.uint8), tmp_path / "i.png")) == 0o644


def test_atomic_temp_names_are_unique_and_hidden(tmp_path):
    with atomic_path(tmp_path / "a.mp4") as first, atomic_path(tmp_path / "a.mp4") as second:
        assert first != second and first.suffix == ".mp4" and first.name.startswith(".a.")
        assert ".partial" in first.name


def test_writer_open_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise av.error.PermissionError(13, "Permission denied")
    monkeypatch.setattr(av, "open", refuse)
    with pytest.raises(av.error.PermissionError) as caught:
        VideoWriter(tmp_path / "out" / "v.mp4", width=16, height=16, fps=25)
    # `caught` keeps the traceback, and with it the half-made writer, alive: cleanup must not wait for the
    # garbage collector to close the temp file's context manager.
    assert caught.value.__traceback__ is not None
    assert list((tmp_path / "out").iterdir()) == []


class _Spy:
    """Stands in for the input container; records whether it was closed."""

    def __init__(self, real):
        self.real, self.closed = real, False
        self.streams = real.streams

    def close(self):
        self.closed = True
        self.real.close()


class _RefusingOutput:
    """An output container that cannot take any audio stream."""

    format = type("Format", (), {"name": "mp4"})()

    def add_stream_from_template(self, stream):
        raise ValueError("no room for this stream")

    add_stream = add_stream_from_template


def test_audio_passthrough_closes_its_input_when_the_output_refuses(sample, monkeypatch):
    opened = []
    real_open = audio_module.open_media

    def spy_open(path):
        opened.append(_Spy(real_open(path)))
        return opened[-1]
    monkeypatch.setattr(audio_module, "open_media", spy_open)
    with pytest.raises(ValueError, match="no room"):
        AudioPassthrough(sample("single_face.mp4"), _RefusingOutput())
    assert [spy.closed for spy in opened] == [True]


def test_unordered_channel_layouts_get_the_default_for_their_count():
    assert encoder_layout(av.AudioLayout("2 channels"), 2) == "2c"
    assert av.AudioLayout("2c") == av.AudioLayout("stereo")
    assert encoder_layout(av.AudioLayout("5.1"), 6) == "5.1"
    assert encoder_layout(av.AudioLayout("mono"), 1) == "mono"


def test_a_damaged_audio_packet_with_a_repeated_time_is_left_out_not_a_crash(sample, tmp_path):
    """A damaged MP3 stream can repeat a packet's time (FFmpeg's parser finds a frame twice); the muxer refuses
    that with EINVAL, which took the whole swap with it. The packet is left out and counted."""
    source = sample("single_face.mp4")
    with av.open(str(source)) as container:
        packets = [p for p in container.demux(container.streams.audio[0]) if p.size]
    packets[10].dts, packets[10].pts = packets[9].dts, packets[9].pts
    output = tmp_path / "out.mp4"
    with av.open(str(output), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        passthrough = AudioPassthrough(source, out)
        passthrough._packets = iter(packets)  # the input's own packets, one of them damaged
        for i in range(25):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
            passthrough.mux_until(i / 25)
        passthrough.finish()
        out.mux(video.encode(None))
    assert (passthrough.packets_copied, passthrough.packets_dropped) == (len(packets) - 1, 1)
    with av.open(str(output)) as written:
        assert sum(1 for p in written.demux(written.streams.audio[0]) if p.size) == len(packets) - 1
