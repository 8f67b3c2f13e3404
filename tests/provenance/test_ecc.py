"""The watermark's error correction: CRC-16 and the rate-1/2 K=7 convolutional code."""
from __future__ import annotations

import numpy as np
import pytest

from facewright.provenance import ecc


def test_crc16_matches_the_ccitt_false_check_value():
    # The standard check value of CRC-16/CCITT-FALSE over ASCII "123456789" is 0x29B1.
    bits = np.unpackbits(np.frombuffer(b"123456789", np.uint8))
    assert ecc.crc16(bits) == 0x29B1


def test_bits_round_trip():
    value = 0xF00DFACE12345678
    assert ecc.bits_to_int(ecc.int_to_bits(value, 64)) == value


@pytest.mark.parametrize("errors", [0, 5, 10])
def test_decoder_corrects_flipped_coded_bits(errors):
    rng = np.random.default_rng(errors)
    message = rng.integers(0, 2, 64).astype(np.uint8)
    coded = ecc.encode_bits(message)
    assert len(coded) == ecc.coded_length(64) == 172
    soft = 2.0 * coded - 1.0
    soft[rng.choice(len(soft), errors, replace=False)] *= -1  # hard errors spread over the block
    decoded, crc_ok = ecc.decode_bits(soft, 64)
    assert crc_ok
    np.testing.assert_array_equal(decoded, message)


def test_soft_decisions_decode_through_gaussian_noise():
    rng = np.random.default_rng(1)
    message = rng.integers(0, 2, 64).astype(np.uint8)
    soft = 2.0 * ecc.encode_bits(message) - 1.0 + rng.normal(0, 0.6, 172)  # ~5% raw bit errors
    decoded, crc_ok = ecc.decode_bits(soft, 64)
    assert crc_ok and (decoded == message).all()


def test_noise_alone_fails_the_crc():
    rng = np.random.default_rng(2)
    failures = sum(not ecc.decode_bits(rng.normal(0, 1, 172), 64)[1] for _ in range(50))
    assert failures >= 49  # a random pass has probability 2^-16 per try
