"""Synthetic occluders: things pasted in front of a face, with an exact alpha, for occlusion-aware masks.

The mask network (like DeepFaceLab's XSeg, but with no hand-drawn labels) learns "face" as the face region from
landmarks minus whatever `occlude` pastes over the crop; the occlusion benchmark pastes `make_occluder`'s
occluders over video frames with `paste` and checks that a swap keeps them.

Contract:
- An occluder is a `Cutout`: RGB uint8 pixels and float32 alpha in 0..1 (1 = occluder), both h x w. A paste is
  exactly `image * (1 - alpha) + pixels * alpha`, rounded, and the returned alpha is that alpha, so
  `label * (1 - alpha)` says how much of each pixel still shows the face. Occluders are opaque: alpha falls
  over ~1 px at their edges (anti-aliased, never blurred; kept so through resampling by steepening the
  resampled alpha) and is fractional elsewhere only on lines thinner than a pixel (strands, thin frames).
- `make_occluder(kind, size, rng)` makes one of KINDS sized for an image (or a face) of side `size`. The real
  kinds ("hand", "face", "patch") come from an `OccluderBank` of cut-outs (`cutout`); the others are drawn.
- Deterministic for a given `np.random.Generator` state; numpy and cv2 only; inputs are never modified.
Coordinates are pixels, x right and y down, pixel centres on integers (as in cv2); angles are degrees,
counter-clockwise on screen (as `cv2.getRotationMatrix2D`).

Layout: `cutouts` (Cutout, OccluderBank, cutout, paste and the warp behind it, real cut-outs varied for a
paste), `drawn` (the drawn kinds, their outlines and textures), `sample` (make_occluder, occlude: placement,
coverage fitting, shadows). Import from here: these names are the API.
"""
from __future__ import annotations

from facewright.train.occluders.cutouts import (
    AREA_FIRST,
    EDGE_STEEPEN,
    KINDS,
    MIN_AREA,
    POOLS,
    REAL_GAIN,
    REAL_ROTATION,
    REAL_SIDE,
    Cutout,
    OccluderBank,
    cutout,
    paste,
)
from facewright.train.occluders.drawn import FRAMES, GRAIN, HAIR, PALETTE_USE, SHIFT
from facewright.train.occluders.sample import (
    ATTEMPTS,
    BORDER_ENTRY,
    BORDER_SIDES,
    COVER,
    FACE_TRIES,
    FIT_SCALE,
    FIT_STEPS,
    FIXED_SCALE,
    GOAL,
    JITTER,
    KIND_WEIGHTS,
    PALETTE,
    SHADOW,
    make_occluder,
    occlude,
)

__all__ = ["AREA_FIRST", "ATTEMPTS", "BORDER_ENTRY", "BORDER_SIDES", "COVER", "EDGE_STEEPEN", "FACE_TRIES",
           "FIT_SCALE", "FIT_STEPS", "FIXED_SCALE", "FRAMES", "GOAL", "GRAIN", "HAIR", "JITTER", "KINDS",
           "KIND_WEIGHTS", "MIN_AREA", "PALETTE", "PALETTE_USE", "POOLS", "REAL_GAIN", "REAL_ROTATION", "REAL_SIDE",
           "SHADOW", "SHIFT", "Cutout", "OccluderBank", "cutout", "make_occluder", "occlude", "paste"]
