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


def encoder_layout(layout: av.AudioLayout, channels: int) -> str:
    """A channel layout an encoder accepts: the input's, or the default one for its channel count.

    PCM in MKV/AVI often carries only a channel count (FFmpeg names it "2 channels"); the AAC encoder
    refuses such an unordered layout, so it gets FFmpeg's default for that count ("2c" -> stereo).
    """
    return f"{channels}c" if layout.name == f"{channels} channels" else layout.name


class AudioPassthrough:
    """Feed the first audio stream of `source` into `output`, interleaved with the video.

    Call `mux_until(t)` after each video frame (t = its time in seconds) and `finish()` before closing.
    """

    def __init__(self, source: str | Path, output: av.container.OutputContainer):
        self.output = output
        self.input = open_media(source)
        try:
            self.in_stream = self.input.streams.audio[0]
            self.copy, self.out_stream = self._add_stream(output)
        except BaseException:
            self.input.close()  # the caller never gets this object, so nobody else could close it
            raise
        self._packets = self.input.demux(self.in_stream)
        self._pending: av.Packet | None = None
        self._last_dts: int | None = None
        self.packets_copied = 0
        self.packets_dropped = 0  # damaged packets left out (the audio skips a few milliseconds there)

    def _add_stream(self, output: av.container.OutputContainer) -> tuple[bool, av.audio.stream.AudioStream]:
        """The output's audio stream: a copy of the input's where the container stores its codec, else AAC."""
        ctx = self.in_stream.codec_context
        if ctx.codec.canonical_name in COPYABLE.get(output.format.name, set()):
            return True, output.add_stream_from_template(self.in_stream)
        return False, output.add_stream("aac", rate=ctx.sample_rate, layout=encoder_layout(ctx.layout, ctx.channels))

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
            if packet.dts is not None and self._last_dts is not None and packet.dts <= self._last_dts:
                self.packets_dropped += 1  # a damaged stream's repeated or backward time: the muxer refuses it
                return
            self._last_dts = packet.dts if packet.dts is not None else self._last_dts
            packet.stream = self.out_stream
            self.output.mux(packet)
            self.packets_copied += 1
            return
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            self.packets_dropped += 1  # a damaged packet decodes to nothing; the encoder goes on after it
            return
        for frame in frames:
            self.output.mux(self.out_stream.encode(frame))

    def finish(self) -> None:
        self.mux_until(None)
        if not self.copy:
            self.output.mux(self.out_stream.encode(None))
        self.input.close()

    def close(self) -> None:
        self.input.close()
