"""Small media made on the fly with PyAV, for cases the sample files do not cover."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def gradient(width: int, height: int, shift: int = 0) -> np.ndarray:
    """An asymmetric RGB test pattern (so flips and rotations are visible)."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([(x * 255 // max(1, width - 1) + shift) % 256,
                      (y * 255 // max(1, height - 1)) % 256,
                      np.where(x < width // 3, 220, 30)], axis=2)
    return image.astype(np.uint8)


def write_clip(path: Path, pts: list[int], time_base: Fraction, size=(64, 48), rotation: int = 0,
               audio: str | None = None, audio_start: int = 0, crf: int = 18, rate: int = 16000,
               layout: str = "mono", video_codec: str = "libx264") -> list[np.ndarray]:
    """Encode frames at the given pts; optional display rotation and an audio track ('pcm_s16le', 'aac',
    'libmp3lame') of `rate` Hz in `layout`, starting `audio_start` samples after the video.
    The container follows the suffix (.mp4, .mov, .mkv, .avi)."""
    width, height = size
    out = av.open(str(path), "w")
    video = out.add_stream(video_codec, rate=int(round(1 / (time_base * (pts[1] - pts[0])))))
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.time_base = video.codec_context.time_base = time_base
    video.options = {"crf": str(crf), "bf": "0"} if video_codec == "libx264" else {}
    if rotation:
        video.set_display_rotation(rotation)
    sound = out.add_stream(audio, rate=rate, layout=layout) if audio else None
    images = []
    for i, t in enumerate(pts):
        image = gradient(width, height, shift=9 * i)
        images.append(image)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = t, time_base
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    if sound is not None:
        seconds = float((pts[-1] - pts[0]) * time_base) + 0.1
        frame = _tone(audio, int(rate * seconds), layout)
        frame.sample_rate, frame.pts = rate, audio_start
        out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    out.close()
    return images


def _tone(codec: str, samples: int, layout: str) -> av.AudioFrame:
    """A sine in every channel: packed s16 for PCM (one interleaved plane), planar float for the rest."""
    channels = av.AudioLayout(layout).nb_channels
    wave = (np.sin(np.arange(samples) / 8) * 8000).astype(np.int16)
    if codec.startswith("pcm"):
        data = np.repeat(wave, channels)[None]
        return av.AudioFrame.from_ndarray(data, format="s16", layout=layout)
    planes = np.tile(wave / 32768, (channels, 1)).astype(np.float32)
    return av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)


def audio_packets(path: Path) -> list[tuple[int | None, int | None, bytes]]:
    """(pts, dts, payload) of every audio packet: copied audio must keep its timing as well as its bytes."""
    with av.open(str(path)) as container:
        return [(p.pts, p.dts, bytes(p)) for p in container.demux(container.streams.audio[0]) if p.size]
