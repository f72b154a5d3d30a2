"""Compressed vectors: token vectors for late interaction (MaxSim) in 5 bits a dimension, sentence vectors in 8.

Token vectors (each content word piece's contextual vector, unit length, 384 dimensions for the default model) are
turned by a fixed random rotation (the same for every index of that dimension: `rotation(d)`), then stored as
5-bit codes with one scale a row, 3 root mean squares of its components: `round(x / scale * 15.5 + 15.5)` clipped
to 0..31, eight codes in five bytes, and the scale (float16) in the row's last two bytes. Decoded rows are made
unit length again. The rotation spreads every vector's energy evenly over the dimensions, so one scale a row fits
all of them (without it, a few large components set the step for all). A question's pieces are rotated once;
MaxSim is a dot product, which the rotation keeps. 242 bytes a row instead of float16's 768.

Sentence vectors are stored as int8 with one scale a row (the largest component, float16): 386 bytes a row.

Every row is self-contained, so segments are merged by copying rows, with no codebook to train, share or keep in
step. Why these (measured, docs/archive.md "Token vectors"): 4 bits changed the MaxSim of a short question by up
to 0.009 and the first passage of one held-out question; 5 bits keep every hit@1 / hit@3 of the seed sets and
SQuAD's within 0.005 (equal, in fact), and an index of ~77-word passages within 20 KB a passage (17.9 KB at
10,000 articles); int8 tokens would take ~26 KB.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

CODEC = "rot-5bit-rms3.0+int8"
BITS = 5
_LEVELS = 2**BITS - 1  # codes 0..31; 15.5 is zero
_HALF = _LEVELS / 2
_CLIP = 3.0  # the scale, in root mean squares of the row's components
_ROTATION_SEED = 20240  # numpy's legacy RandomState: its stream never changes across numpy versions


def _groups(dimension: int) -> int:
    return (dimension + 7) // 8


def row_bytes(dimension: int) -> int:
    """Bytes a stored token row takes: eight codes in five bytes, then the float16 scale."""
    return _groups(dimension) * 5 + 2


@lru_cache(maxsize=4)
def rotation(dimension: int) -> np.ndarray:
    """The fixed orthogonal (d, d) matrix the token codes are taken in."""
    g = np.random.RandomState(_ROTATION_SEED).standard_normal((dimension, dimension))
    q, r = np.linalg.qr(g)
    out = (q * np.sign(np.diag(r))).astype(np.float32)
    out.setflags(write=False)
    return out


def rotate(vectors: np.ndarray) -> np.ndarray:
    """Vectors (a question's pieces) in the codes' space: dot products with decoded rows are then MaxSim's."""
    x = np.asarray(vectors, dtype=np.float32)
    return x @ rotation(x.shape[1]) if len(x) else x.reshape(0, x.shape[-1] if x.ndim == 2 else 0)


def encode(vectors: np.ndarray) -> np.ndarray:
    """(n, d) float token vectors -> (n, row_bytes(d)) uint8 rows."""
    x = rotate(vectors)
    n, d = x.shape
    g = _groups(d)
    scale = (_CLIP * np.sqrt((x.astype(np.float64) ** 2).mean(axis=1))) if n else np.zeros(0)
    scale = np.maximum(scale, 1e-12).astype(np.float16)
    step = np.maximum(scale.astype(np.float32), 1e-12)[:, None]
    q = np.full((n, g * 8), 16, np.uint64)
    q[:, :d] = np.clip(np.rint(x / step * _HALF + _HALF), 0, _LEVELS)
    packed = np.zeros((n, g), np.uint64)
    for i in range(8):
        packed |= q[:, i::8] << np.uint64(BITS * i)
    out = np.empty((n, row_bytes(d)), np.uint8)
    out[:, : g * 5] = packed.view(np.uint8).reshape(n, g, 8)[:, :, :5].reshape(n, g * 5)  # little-endian: low 40 bits
    out[:, -2:] = scale.view(np.uint8).reshape(n, 2)
    return out


def decode(rows: np.ndarray, dimension: int) -> np.ndarray:
    """(n, row_bytes(d)) uint8 rows -> (n, d) float32 unit vectors, in the rotated space (see `rotate`). The scale is
    kept in the row for tools that want the raw values; unit length needs only the codes."""
    rows = np.asarray(rows)
    n, g = len(rows), _groups(dimension)
    wide = np.zeros((n, g, 8), np.uint8)
    wide[:, :, :5] = rows[:, : g * 5].reshape(n, g, 5)
    packed = wide.view(np.uint64).reshape(n, g)
    q = np.empty((n, g, 8), np.float32)
    for i in range(8):
        q[:, :, i] = (packed >> np.uint64(BITS * i)) & np.uint64(_LEVELS)
    x = q.reshape(n, g * 8)[:, :dimension] - _HALF
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def sentence_bytes(dimension: int) -> int:
    """Bytes a stored sentence row takes: int8 codes, then the float16 scale."""
    return dimension + 2


def encode8(vectors: np.ndarray) -> np.ndarray:
    """(n, d) float vectors -> (n, d + 2) uint8 rows: int8 codes, then the float16 scale (the row's largest value)."""
    x = np.asarray(vectors, dtype=np.float32)
    n, d = x.shape
    scale = np.maximum(np.abs(x).max(axis=1) if n else np.zeros(0), 1e-12).astype(np.float16)
    q = np.clip(np.rint(x / np.maximum(scale.astype(np.float32), 1e-12)[:, None] * 127), -127, 127).astype(np.int8)
    out = np.empty((n, d + 2), np.uint8)
    out[:, :d] = q.view(np.uint8)
    out[:, d:] = scale.view(np.uint8).reshape(n, 2)
    return out


def decode8(rows: np.ndarray, dimension: int) -> np.ndarray:
    """(n, d + 2) uint8 rows -> (n, d) float32 vectors."""
    rows = np.asarray(rows)
    n = len(rows)
    scale = np.ascontiguousarray(rows[:, dimension:]).view(np.float16).astype(np.float32).reshape(n, 1)
    return rows[:, :dimension].view(np.int8).astype(np.float32) * (scale / 127)
