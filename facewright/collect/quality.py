"""Per-face quality scores and the keep/reject decision, as pure functions on aligned crops and numbers."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facewright.config import ExtractOptions
from facewright.media.image import Frame

REASONS = ("too small", "too blurry", "profile beyond limit", "duplicate", "other identity")
_SHARPNESS_SIDE = 256  # sharpness is measured at one size, so scores compare across --size


@dataclass(frozen=True)
class Quality:
    face_width: float  # source pixels
    sharpness: float  # variance of the Laplacian of the gray crop at 256 px
    yaw: float
    pitch: float
    roll: float
    eyes_closed: float  # 0..1
    mouth_open: float  # 0..1


def sharpness(crop: Frame) -> float:
    """Variance of the Laplacian of the grayscale crop resized to 256 px: low means blurred."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    if gray.shape[0] != _SHARPNESS_SIDE:
        gray = cv2.resize(gray, (_SHARPNESS_SIDE, _SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def crop_hash(crop: Frame) -> int:
    """64-bit difference hash (dHash) of the crop: near-identical poses and expressions differ in few bits."""
    gray = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (9, 8), interpolation=cv2.INTER_AREA)
    bits = (gray[:, 1:] > gray[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def reject_reason(quality: Quality, options: ExtractOptions) -> str | None:
    """The first quality rule the face fails, or None to keep it (duplicates and identity are judged later)."""
    if quality.face_width < options.min_face:
        return "too small"
    if quality.sharpness < options.min_sharpness:
        return "too blurry"
    if abs(quality.yaw) > options.max_yaw or abs(quality.pitch) > options.max_pitch:
        return "profile beyond limit"
    return None


class Deduper:
    """Remembers the hashes of kept faces; a face within `limit` bits of another one is a duplicate.

    `hashes` maps each kept face's key (its crop's name) to its hash. A face is never its own duplicate: a
    re-run with other sampling meets the faces it kept before, and must keep them, not reject them.
    """

    def __init__(self, limit: int, hashes: dict[str, int] | list[int] | None = None):
        self.limit = limit
        hashes = hashes or {}
        keyed = hashes if isinstance(hashes, dict) else {}
        self._hashes = np.array(list(keyed.values()) if keyed else list(hashes), np.uint64)
        self._index = {key: i for i, key in enumerate(keyed)}

    def is_duplicate(self, value: int, key: str | None = None) -> bool:
        if self.limit <= 0 or not self._hashes.size:
            return False
        bits = np.bitwise_count(self._hashes ^ np.uint64(value))
        own = self._index.get(key)
        if own is not None:
            bits[own] = 64  # the face's own earlier hash
        return bool(bits.min() <= self.limit)

    def add(self, value: int, key: str | None = None) -> None:
        own = self._index.get(key)
        if own is not None:  # the same face again: its new crop replaces the old
            self._hashes[own] = np.uint64(value)
            return
        if key is not None:
            self._index[key] = len(self._hashes)
        self._hashes = np.append(self._hashes, np.uint64(value))
