"""Error correction for the watermark payload: CRC-16 to validate, a convolutional code to correct.

The payload (64 bits) gets a CRC-16 (CCITT) and 6 zero tail bits, then a rate-1/2, constraint-length-7
convolutional code (generators 133 and 171 octal, the one used by 802.11 and DVB), decoded with a
soft-decision Viterbi decoder. Soft decisions matter: a watermark's bit statistics are graded, not binary.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

CONSTRAINT = 7
GENERATORS = (0o133, 0o171)
TAIL = CONSTRAINT - 1
CRC_BITS = 16
_STATES = 1 << (CONSTRAINT - 1)

Bits = NDArray[np.uint8]  # 0/1 values, most significant first


def int_to_bits(value: int, width: int) -> Bits:
    return np.array([(value >> (width - 1 - i)) & 1 for i in range(width)], dtype=np.uint8)


def bits_to_int(bits: Bits) -> int:
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def crc16(bits: Bits) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over a bit sequence."""
    crc = 0xFFFF
    for bit in bits:
        top = ((crc >> 15) & 1) ^ int(bit)
        crc = ((crc << 1) & 0xFFFF) ^ (0x1021 if top else 0)
    return crc


def _parity(values: NDArray[np.int64]) -> NDArray[np.uint8]:
    out = np.zeros_like(values)
    for shift in range(CONSTRAINT):
        out ^= (values >> shift) & 1
    return out.astype(np.uint8)


def _transitions() -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
    """next_state[state, bit] and output[state, bit, 2] of the encoder (state = last 6 input bits)."""
    states = np.arange(_STATES)[:, None]
    bits = np.arange(2)[None, :]
    register = (bits << (CONSTRAINT - 1)) | states  # newest bit on top
    outputs = np.stack([_parity(register & g) for g in GENERATORS], axis=-1)
    return register >> 1, outputs


_NEXT, _OUTPUT = _transitions()


def encode_bits(message: Bits) -> Bits:
    """message + CRC-16 + tail -> 2 * (len + 16 + 6) coded bits."""
    framed = np.concatenate([message, int_to_bits(crc16(message), CRC_BITS), np.zeros(TAIL, np.uint8)])
    state, coded = 0, []
    for bit in framed:
        coded.extend(_OUTPUT[state, bit])
        state = _NEXT[state, bit]
    return np.array(coded, dtype=np.uint8)


def coded_length(message_bits: int) -> int:
    return 2 * (message_bits + CRC_BITS + TAIL)


def viterbi(soft: NDArray[np.floating]) -> Bits:
    """Most likely framed input for soft coded values (positive = bit 0 likelier... see `decode_bits`).

    `soft` holds one value per coded bit, signed so that +1 means bit 1; magnitudes are confidences.
    """
    steps = len(soft) // 2
    pairs = np.asarray(soft, np.float64)[: 2 * steps].reshape(steps, 2)
    signs = 2.0 * _OUTPUT.astype(np.float64) - 1.0  # [state, bit, 2] in +-1
    # The new state's top bit is the input bit; its two predecessors differ only in their oldest bit.
    new = np.arange(_STATES)
    bit = new >> (CONSTRAINT - 2)
    preds = ((new & (_STATES // 2 - 1)) << 1)[:, None] + np.arange(2)[None, :]  # [new state, 2]
    branch = signs[preds, bit[:, None]]  # [new state, 2 preds, 2 outputs]
    metric = np.full(_STATES, -np.inf)
    metric[0] = 0.0
    back = np.zeros((steps, _STATES), np.int64)  # previous state * 2 + input bit, per new state
    for t in range(steps):
        gain = metric[preds] + branch @ pairs[t]  # [new state, 2]
        pick = np.argmax(gain, axis=1)
        metric = gain[new, pick]
        back[t] = preds[new, pick] * 2 + bit
    return _trace_back(back, end_state=0)


def _trace_back(back: NDArray[np.int64], end_state: int) -> Bits:
    bits = np.zeros(len(back), np.uint8)
    state = end_state
    for t in range(len(back) - 1, -1, -1):
        bits[t] = back[t, state] & 1
        state = back[t, state] >> 1
    return bits


def decode_bits(soft: NDArray[np.floating], message_bits: int) -> tuple[Bits, bool]:
    """Soft values (+ means 1) -> (message bits, CRC ok)."""
    framed = viterbi(soft)
    message = framed[:message_bits]
    crc = bits_to_int(framed[message_bits:message_bits + CRC_BITS])
    return message, crc == crc16(message)
