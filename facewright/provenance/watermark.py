"""Invisible watermark: a 64-bit payload hidden in the luma of images and video frames.

Scheme (spread spectrum on a periodic tile, built to survive what re-sharing does to a file):
- A tile of CELLS x CELLS cells repeats over the whole picture. Every cell carries the sum of a fixed
  pseudo-random sync sign (the same for every payload) and one payload chip: the sign of one coded bit times
  a pseudo-random sign. The 64-bit payload is CRC-16 protected and convolutionally coded (`ecc`), so each of
  172 coded bits owns about 6 cells of every tile.
- The pattern's size follows the picture's: cells are CELL pixels on a picture whose short side is GROW_FROM
  pixels or less, and short side / (REFERENCE / CELL) pixels on larger ones (12 px at 1080p). A copy scaled
  down as a whole (1080p served as 360p) therefore shows the pattern the detector expects at its size.
  Small pictures keep the finest cells: more of them, so more evidence per picture (a 512 px photo through
  H.264 crf 28 was found with z 7.7-9.4 at 4 px cells, 5.8-6.8 at 5.7 px, one payload in five lost).
- The pattern is smoothed and added equally to R, G and B (a pure luma change, so chroma subsampling in
  JPEG and H.264 does not touch it), at an RMS of `strength` 8-bit levels (3.0 -> PSNR about 38.5 dB).
- Detection brings the luma to the reference size, removes the picture with a band-pass filter weighted by
  the inverse local variance, and sums the residual over the frames of a video. Then:
  1. the residual is folded onto one tile at the expected period, and the sync pattern is searched by
     circular correlation (any crop offset) in each of the eight flips and quarter turns of the tile;
  2. if that finds nothing, the lattice of the repeating tile is measured from the residual's
     autocorrelation (its peaks sit at the tile's period vectors, whatever rotation or scale the copy
     went through), the residual is warped back onto the reference grid, refined by a small search, and
     folded and searched as in 1.
  The sync peak's z-score gives a false-positive probability over every offset, orientation and lattice
  tried; a payload is reported only when that is below SYNC_GATE and its CRC-16 matches, which an unmarked
  picture's decoded bits do once in 65536 per decode: `p_value` is the product, below P_THRESHOLD.

The key below is public on purpose: this mark says "made by facewright, see record X", it is not a secret.
Files marked before the pattern followed the picture's size (4 px cells at every size) are read at the
reference size when that is their size, by the lattice search up to a 900-pixel short side, and above that
by a direct read at full size of one frame in LEGACY_EVERY.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from numpy.typing import NDArray

from facewright.errors import OptionError
from facewright.media.image import Frame
from facewright.provenance import ecc, lattice

PAYLOAD_BITS = 64
CELL = 4  # pixels at the reference size: survives JPEG q50, H.264 crf 40 and halving the size
CELLS = 32
TILE = CELL * CELLS
REFERENCE = 360  # short side (pixels) whose cells are CELL pixels when the pattern grows with the picture
GROW_FROM = 576  # short sides up to this keep CELL pixel cells; beyond, the pattern scales with the picture
STRENGTH = 3.0  # RMS in 8-bit levels
SYNC_SHARE = 0.12  # share of the power spent on the sync pattern; the rest carries the payload
SYNC_GATE = 1e-4  # a mark is found where its CRC matches and its sync peak alone is this unlikely by chance
CRC_CHANCE = 2.0 ** -ecc.CRC_BITS  # the chance that a payload decoded from an unmarked picture passes its CRC
P_THRESHOLD = 1e-6  # so every mark found has a false-positive probability (at most 2 decodes) below this
LEGACY_EVERY = 4  # frames of a large picture also read as marked before the pattern followed the size: 1 in 4
KEY = b"facewright-watermark-v1"
_WHITEN = 0.5  # the folded tile's spectrum is divided by its magnitude to this power: +1 z on video
ORIENTATIONS = 8  # the tile is searched in every flip and quarter turn (mirrored or rotated copies)
_HIGH_PASS = 1.5  # Gaussian sigma (pixels at the reference size) of the blur the detector subtracts
_LOCAL = 4.0  # Gaussian sigma of the local variance estimate
_REFINE_GATE = 0.5  # the lattice estimate is refined only where its sync peak is at least this unlikely


@dataclass(frozen=True)
class WatermarkResult:
    """What detection found. `bit_accuracy`: share of the raw coded bits that agree with the decoded payload
    re-encoded (1.0 on a clean copy; about 0.7 on pictures without a mark, because the decoder picks the
    codeword nearest to whatever the bits are: `accuracy_against` a known payload measures a channel).
    `p_value`: probability that an unmarked picture shows this evidence: for a mark found, a sync peak this
    strong anywhere searched and a matching CRC; otherwise the sync peak's alone, which the gate judged.
    `scale` and `angle`: the pattern's size relative to what a picture of this size is marked with (1.0:
    marked at this size, or scaled as a whole) and its rotation in degrees, counter-clockwise;
    `orientation`: 0-3 quarter turns, 4-7 the same mirrored."""

    found: bool
    payload: int | None  # only when found
    decoded: int  # the best-guess 64 bits even when not found (for measuring bit accuracy against a truth)
    bit_accuracy: float
    p_value: float
    z_score: float
    offset: tuple[int, int]  # (dy, dx) of the tile origin, in reference pixels
    scale: float
    frames: int
    angle: float = 0.0
    orientation: int = 0

    @property
    def payload_hex(self) -> str | None:
        return None if self.payload is None else f"{self.payload:016x}"

    @property
    def mirrored(self) -> bool:
        """Whether the copy in hand is mirrored against the marked picture."""
        return self.orientation >= 4

    @property
    def rotation(self) -> float:
        """The copy's rotation against the marked picture (of its mirror image when mirrored), degrees
        counter-clockwise in (-180, 180]: the quarter turns the tile search undid plus the lattice's angle."""
        turned = (90 * ((4 - self.orientation % 4) % 4) + self.angle) % 360
        return round(turned - 360 if turned > 180 else turned, 1)

    def accuracy_against(self, truth: int) -> float:
        """Share of the 64 decoded payload bits equal to `truth`'s."""
        return 1.0 - bin(self.decoded ^ truth).count("1") / PAYLOAD_BITS


@dataclass(frozen=True)
class _Layout:
    sync: NDArray[np.float32]  # CELLS x CELLS, +-1
    chip: NDArray[np.float32]  # CELLS x CELLS, +-1 spreading signs of the payload chips
    owner: NDArray[np.intp]  # CELLS x CELLS, index of the coded bit each cell carries


@lru_cache(maxsize=1)
def _layout() -> _Layout:
    seed = int.from_bytes(hashlib.sha256(KEY).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    shape = (CELLS, CELLS)
    n_coded = ecc.coded_length(PAYLOAD_BITS)
    owner = rng.permutation(CELLS * CELLS) % n_coded
    return _Layout(sync=rng.choice([-1.0, 1.0], shape).astype(np.float32),
                   chip=rng.choice([-1.0, 1.0], shape).astype(np.float32),
                   owner=owner.reshape(shape))


def _smooth_cells(cells: NDArray[np.float32]) -> NDArray[np.float32]:
    """Cells -> one TILE x TILE pixel tile, smoothed with wrap-around so the tiling stays seamless."""
    pixels = np.kron(cells, np.ones((CELL, CELL), np.float32))
    padded = np.pad(pixels, CELL, mode="wrap")
    return cv2.GaussianBlur(padded, (0, 0), 1.0)[CELL:-CELL, CELL:-CELL]


def _check_payload(payload: int) -> None:
    if not 0 <= payload < 1 << PAYLOAD_BITS:
        raise OptionError(f"watermark payload must be a {PAYLOAD_BITS}-bit unsigned integer, got {payload}")


@lru_cache(maxsize=8)
def tile_pattern(payload: int) -> NDArray[np.float32]:
    """The TILE x TILE pattern for a payload at the reference size, unit RMS."""
    _check_payload(payload)
    layout = _layout()
    coded = ecc.encode_bits(ecc.int_to_bits(payload, PAYLOAD_BITS)).astype(np.float32) * 2 - 1
    cells = math.sqrt(SYNC_SHARE) * layout.sync + math.sqrt(1 - SYNC_SHARE) * coded[layout.owner] * layout.chip
    tile = _smooth_cells(cells.astype(np.float32))
    return tile / np.sqrt(np.mean(tile**2))


def pattern_scale(height: int, width: int) -> float:
    """How many picture pixels one reference pixel of the pattern covers: 1 up to GROW_FROM, then short / 360."""
    short = min(height, width)
    return 1.0 if short <= GROW_FROM else short / REFERENCE


def embed(image: Frame, payload: int, strength: float = STRENGTH) -> Frame:
    """Return a watermarked copy of an H x W x 3 uint8 RGB image (the input is not modified)."""
    delta = _frame_delta(payload, float(strength), image.shape[0], image.shape[1])
    out = np.add(image, delta[:, :, None], dtype=np.int16)
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


@lru_cache(maxsize=4)
def _frame_delta(payload: int, strength: float, height: int, width: int) -> NDArray[np.int16]:
    """The tiled pattern for a frame size, rounded to levels (cached: a video's frames share it)."""
    tile = tile_pattern(payload) * strength
    scale = pattern_scale(height, width)
    if scale == 1.0:
        reps = (-(-height // TILE), -(-width // TILE))
        return np.rint(np.tile(tile, reps)[:height, :width]).astype(np.int16)
    # Sample the reference tile at pixel centres of the larger picture, wrapping around the tile.
    xs = ((np.arange(width, dtype=np.float64) + 0.5) / scale - 0.5) % TILE
    ys = ((np.arange(height, dtype=np.float64) + 0.5) / scale - 0.5) % TILE
    map_x = np.broadcast_to(xs[None, :], (height, width)).astype(np.float32)
    map_y = np.broadcast_to(ys[:, None], (height, width)).astype(np.float32)
    delta = cv2.remap(tile, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    return np.rint(delta).astype(np.int16)


def _luma(image: Frame) -> NDArray[np.float32]:
    if image.ndim == 2:
        return image.astype(np.float32)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def reference_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) of a picture brought to the pattern's reference size."""
    scale = pattern_scale(height, width)
    return max(1, round(height / scale)), max(1, round(width / scale))


def _at_reference(luma: NDArray[np.float32]) -> NDArray[np.float32]:
    height, width = reference_size(*luma.shape)
    if (height, width) != luma.shape:
        return cv2.resize(luma, (width, height), interpolation=cv2.INTER_AREA)
    return luma


def _whitened(luma: NDArray[np.float32]) -> NDArray[np.float32]:
    """Textured regions (hair, foliage) hide the mark but also drown it; weighting each pixel by the inverse
    of its local variance is the matched-filter weighting for noise that varies over the picture, and
    measured 2-3x the per-bit SNR of a plain band-pass on the astronaut photo."""
    high = luma - cv2.GaussianBlur(luma, (0, 0), _HIGH_PASS)
    local = np.sqrt(cv2.GaussianBlur(high * high, (0, 0), _LOCAL)) + 1.0
    return np.clip(high / (local * local), -3.0, 3.0)


def fold(res: NDArray[np.floating], weight: NDArray[np.floating] | None = None) -> NDArray[np.float64]:
    """Sum a residual onto one TILE x TILE tile (origin at the residual's top-left pixel)."""
    height, width = res.shape
    padded = np.zeros((-(-height // TILE) * TILE, -(-width // TILE) * TILE), np.float64)
    padded[:height, :width] = res if weight is None else res * weight
    return padded.reshape(padded.shape[0] // TILE, TILE, padded.shape[1] // TILE, TILE).sum(axis=(0, 2))


class Accumulator:
    """Sums the residuals of frames (one image, or many frames of a video) and decodes the payload from the sum.

    The sum is linear in the frames, so folding or warping it equals folding or warping every frame:
    evidence from a whole clip costs one search. Frames of another size than the first are skipped. For a
    picture larger than the reference, one frame in LEGACY_EVERY is also summed at full size, where a mark of
    the earlier fixed-size pattern lives.
    """

    def __init__(self) -> None:
        self.frames = 0
        self._sum: NDArray[np.float64] | None = None
        self._native: NDArray[np.float64] | None = None
        self._shape: tuple[int, int] | None = None

    def add(self, image: Frame) -> None:
        luma = _luma(image)
        if self._shape is None:
            self._shape = luma.shape
        elif luma.shape != self._shape:
            return
        res = _whitened(_at_reference(luma))
        self._sum = res.astype(np.float64) if self._sum is None else self._sum + res
        if pattern_scale(*luma.shape) > 1 and self.frames % LEGACY_EVERY == 0:
            native = _whitened(luma)
            self._native = native.astype(np.float64) if self._native is None else self._native + native
        self.frames += 1

    def result(self, search: bool = True) -> WatermarkResult:
        """Decode at the expected size in every orientation; with `search`, measure the lattice if that fails."""
        if self._sum is None or self._shape is None:
            return _nothing(0)
        return locate(self._sum, self.frames, search=search, native=self._native,
                      scale=pattern_scale(*self._shape))


def _nothing(frames: int) -> WatermarkResult:
    return WatermarkResult(False, None, 0, 0.0, 1.0, 0.0, (0, 0), 1.0, frames)


def locate(res: NDArray[np.float64], frames: int = 1, search: bool = True, native: NDArray[np.float64] | None = None,
           scale: float = 1.0) -> WatermarkResult:
    """Find and decode the mark in a (summed) residual: at the expected period first, then by lattice search,
    then (`native`: the full-size residual of a picture `scale` times the reference) the fixed-size pattern of
    earlier versions. Each CRC tried counts in the p-value."""
    direct = _Peak.best(fold(res))
    hypotheses, decodes = ORIENTATIONS, 0
    if direct.p_value(hypotheses) < SYNC_GATE:
        decodes += 1
        found = direct.decode(frames, hypotheses, decodes)
        if found.found or not search:
            return found
    elif not search:
        return direct.decode(frames, hypotheses, 1)
    best = direct
    candidates = lattice.candidates(res, TILE)
    for matrix in candidates:
        best = max(best, _Peak.of_warp(res, matrix), key=lambda peak: peak.z)
    hypotheses += ORIENTATIONS * len(candidates)
    if best is not direct and best.p_value(hypotheses) < _REFINE_GATE:
        for refined in lattice.refinements(best.matrix):
            best = max(best, _Peak.of_warp(res, refined), key=lambda peak: peak.z)
        hypotheses += ORIENTATIONS * lattice.REFINEMENTS
    if native is not None:
        hypotheses += ORIENTATIONS
        best = max(best, _Peak.best(fold(native), np.eye(2) * scale), key=lambda peak: peak.z)
    if best is direct and decodes:
        return direct.decode(frames, hypotheses, decodes)  # the same decode again: no new CRC tried
    return best.decode(frames, hypotheses, decodes + 1)


@dataclass(frozen=True)
class _Peak:
    """The strongest sync peak of one folded tile, over the eight orientations."""

    z: float
    tile: NDArray[np.float64]  # the folded tile, turned back to the reference orientation
    offset: tuple[int, int]
    orientation: int
    matrix: NDArray[np.float64]  # 2 x 2: picture pixel -> reference pixel (identity for the direct fold)

    @classmethod
    def best(cls, tile: NDArray[np.float64], matrix: NDArray[np.float64] | None = None) -> _Peak:
        turned = np.stack([_orient(tile, orientation) for orientation in range(ORIENTATIONS)])
        spectrum = np.fft.rfft2(turned)
        spectrum /= np.abs(spectrum) ** _WHITEN + 1e-9  # flattens the picture's leftovers
        corr = np.fft.irfft2(spectrum * _sync_spectrum(), s=tile.shape)
        sample = corr[:, ::2, ::2].reshape(ORIENTATIONS, -1)  # a quarter of the offsets sets the noise level
        center = np.median(sample, axis=1)
        spread = 1.4826 * np.median(np.abs(sample - center[:, None]), axis=1) + 1e-12
        peaks = corr.reshape(ORIENTATIONS, -1).argmax(axis=1)
        z = (corr.reshape(ORIENTATIONS, -1)[np.arange(ORIENTATIONS), peaks] - center) / spread
        orientation = int(np.argmax(z))
        peak = np.unravel_index(int(peaks[orientation]), tile.shape)
        return cls(float(z[orientation]), turned[orientation], (int(peak[0]), int(peak[1])), orientation,
                   np.eye(2) if matrix is None else matrix)

    @classmethod
    def of_warp(cls, res: NDArray[np.float64], matrix: NDArray[np.float64]) -> _Peak:
        """Warp `res` by `matrix` (picture -> reference pixels) and fold it."""
        height, width = res.shape
        corners = matrix @ np.array([[0, width, 0, width], [0, 0, height, height]], np.float64)
        low = np.floor(corners.min(axis=1))
        size = np.ceil(corners.max(axis=1) - low).astype(int) + 1
        affine = np.hstack([matrix, -low[:, None]]).astype(np.float64)
        warped = cv2.warpAffine(res.astype(np.float32), affine, (int(size[0]), int(size[1])),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return cls.best(fold(warped), matrix)

    def p_value(self, hypotheses: int) -> float:
        """The chance of a sync peak this strong at any of the offsets of `hypotheses` folded tiles."""
        return min(1.0, TILE * TILE * hypotheses * _normal_sf(self.z))

    def decode(self, frames: int, hypotheses: int, decodes: int = 1) -> WatermarkResult:
        """The payload at this peak; `decodes`: the CRCs tried on this picture so far, this one included."""
        aligned = np.roll(self.tile, (-self.offset[0], -self.offset[1]), axis=(0, 1))
        soft = _chip_values(aligned)
        message, crc_ok = ecc.decode_bits(soft, PAYLOAD_BITS)
        agreement = float(np.mean((soft > 0) == ecc.encode_bits(message).astype(bool)))
        sync_p = self.p_value(hypotheses)
        # The payload's CRC is a second test, independent of the sync on an unmarked picture (the chips' signs
        # are unrelated to the sync's): each decode's bits pass it by chance once in 2^16.
        found = crc_ok and sync_p < SYNC_GATE
        p_value = min(1.0, sync_p * CRC_CHANCE * decodes) if found else sync_p
        decoded = ecc.bits_to_int(message)
        scale = 1.0 / math.sqrt(abs(np.linalg.det(self.matrix)))
        angle = math.degrees(math.atan2(self.matrix[1, 0], self.matrix[0, 0]))  # counter-clockwise as seen
        return WatermarkResult(found, decoded if found else None, decoded, agreement, p_value, self.z,
                               self.offset, round(scale, 4), frames, round(angle, 2), self.orientation)


def _orient(tile: NDArray[np.float64], orientation: int) -> NDArray[np.float64]:
    """One of the eight flips and quarter turns of a square tile (0: as it is)."""
    turned = np.rot90(tile, orientation % 4)
    return np.ascontiguousarray(turned[:, ::-1] if orientation >= 4 else turned)


@lru_cache(maxsize=1)
def _sync_spectrum() -> NDArray[np.complex128]:
    return np.conj(np.fft.rfft2(_smooth_cells(_layout().sync)))


def _chip_values(aligned: NDArray[np.float64]) -> NDArray[np.float64]:
    """Soft value of every coded bit (+ = 1), normalized to unit noise."""
    layout = _layout()
    weights = _smooth_cells(layout.chip)  # matched filter of the chips, in pixels
    per_cell = (aligned * weights).reshape(CELLS, CELL, CELLS, CELL).sum(axis=(1, 3))
    n_coded = ecc.coded_length(PAYLOAD_BITS)
    soft = np.bincount(layout.owner.ravel(), weights=per_cell.ravel(), minlength=n_coded)
    spread = 1.4826 * np.median(np.abs(soft)) + 1e-12
    return soft / spread


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def detect(image: Frame, search: bool = True) -> WatermarkResult:
    """Detect the mark in one picture."""
    acc = Accumulator()
    acc.add(image)
    return acc.result(search)


def detect_frames(frames: Iterable[Frame], search: bool = True) -> WatermarkResult:
    """Detect the mark in a sequence of frames (a video clip): evidence adds up over frames."""
    acc = Accumulator()
    for frame in frames:
        acc.add(frame)
    return acc.result(search)


def psnr(a: Frame, b: Frame) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)
