"""Audio pass-through: the input's audio copied packet for packet into an output container.

Copied packets keep their bytes and timestamps, so A/V sync is the input's. When the output container
cannot hold the codec (PCM or Vorbis into MP4), the audio is re-encoded to AAC instead.
"""
from __future__ import annotations

from pathlib import Path

import av
import av.error

from facewright.media.video import open_media

# Codecs (FFmpeg canonical names) each output container stores as they are.
COPYABLE = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_f32le", "pcm_s16be"},
}
# How far audio may run ahead of the last video frame written; keeps muxer buffers small.
LEAD_SECONDS = 0.5


class AudioPassthrough:
    """Feed the first audio stream of `source` into `output`, interleaved with the video.

    Call `mux_until(t)` after each video frame (t = its time in seconds) and `finish()` before closing.
    """

    def __init__(self, source: str | Path, output: av.container.OutputContainer):
        self.output = output
        self.input = open_media(source)
        self.in_stream = self.input.streams.audio[0]
        codec = self.in_stream.codec_context.codec.canonical_name
        self.copy = codec in COPYABLE.get(output.format.name, set())
        if self.copy:
            self.out_stream = output.add_stream_from_template(self.in_stream)
        else:
            ctx = self.in_stream.codec_context
            self.out_stream = output.add_stream("aac", rate=ctx.sample_rate, layout=ctx.layout.name)
        self._packets = self.input.demux(self.in_stream)
        self._pending: av.Packet | None = None
        self.packets_copied = 0

    @staticmethod
    def has_audio(source: str | Path) -> bool:
        with open_media(source) as container:
            return bool(container.streams.audio)

    def mux_until(self, seconds: float | None) -> None:
        """Mux audio packets up to `seconds` + LEAD_SECONDS (all remaining ones if None)."""
        limit = None if seconds is None else seconds + LEAD_SECONDS
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            if limit is not None and packet.pts is not None and float(packet.pts * packet.time_base) > limit:
                self._pending = packet
                return
            self._mux(packet)

    def _mux(self, packet: av.Packet) -> None:
        if self.copy:
            if packet.size == 0:  # the demuxer's end-of-stream marker: nothing to store
                return
            packet.stream = self.out_stream
            self.output.mux(packet)
            self.packets_copied += 1
            return
        for frame in packet.decode():
            self.output.mux(self.out_stream.encode(frame))

    def finish(self) -> None:
        self.mux_until(None)
        if not self.copy:
            self.output.mux(self.out_stream.encode(None))
        self.input.close()

    def close(self) -> None:
        self.input.close()
