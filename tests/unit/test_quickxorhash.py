"""QuickXorHash against Microsoft's algorithm (a plain reference), outside vectors, and chunking."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharelift.quickxorhash import DIGEST_SIZE, QuickXorHash, b64, quickxor_file, quickxor_file_b64

VECTORS = Path("/work/shared/test-vectors/quickxorhash.json")


def reference_quickxor(data: bytes) -> bytes:
    """Microsoft's published algorithm, byte by byte, with no shortcut.

    A 160-bit register; byte i is XORed in at bit (11 * i) mod 160, bits past 159 wrapping to
    bit 0; the register as 20 little-endian bytes; the 64-bit length XORed into bytes 12..19.
    """
    register = 0
    mask = (1 << 160) - 1
    for i, byte in enumerate(data):
        shift = (11 * i) % 160
        placed = byte << shift
        register ^= (placed & mask) | (placed >> 160)
    out = bytearray(register.to_bytes(20, "little"))
    for i, byte in enumerate(len(data).to_bytes(8, "little")):
        out[12 + i] ^= byte
    return bytes(out)


def _load_vectors() -> list[dict[str, Any]]:
    if not VECTORS.exists():
        return []
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text())
    return vectors


@pytest.mark.skipif(not VECTORS.exists(), reason="shared vectors not present on this machine")
@pytest.mark.parametrize("vector", _load_vectors(), ids=lambda v: f"size{v['size']}")
def test_independent_vectors_whole_and_split(vector: dict[str, Any]) -> None:
    data = base64.b64decode(vector["in_b64"])
    expected = vector["out_b64"]
    assert QuickXorHash(data).b64digest() == expected
    assert b64(reference_quickxor(data)) == expected
    for step in (1, 3, 7, 160, 161):
        h = QuickXorHash()
        for i in range(0, len(data), step):
            h.update(data[i : i + step])
        assert h.b64digest() == expected


def test_hashlib_surface() -> None:
    h = QuickXorHash()
    assert h.digest_size == DIGEST_SIZE == 20
    assert h.name == "quickxorhash"
    assert h.digest() == bytes(20)
    h.update(b"hello")
    clone = h.copy()
    clone.update(b" world")
    assert h.digest() == reference_quickxor(b"hello")
    assert clone.digest() == reference_quickxor(b"hello world")
    assert h.hexdigest() == reference_quickxor(b"hello").hex()
    assert base64.b64decode(h.b64digest()) == h.digest()
    assert h.length == 5
    # digest() does not change the state
    assert h.digest() == h.digest()


def test_accepts_any_buffer() -> None:
    data = bytes(range(256)) * 10
    expected = reference_quickxor(data)
    assert QuickXorHash(bytearray(data)).digest() == expected
    assert QuickXorHash(memoryview(data)).digest() == expected
    assert QuickXorHash(np.frombuffer(data, dtype=np.uint8).data).digest() == expected
    assert QuickXorHash(np.frombuffer(data, dtype=np.uint32).data).digest() == expected
    assert QuickXorHash(memoryview(data)[::2]).digest() == reference_quickxor(data[::2])


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=30_000),
    cuts=st.lists(st.integers(min_value=0, max_value=30_000), max_size=8),
)
def test_any_chunking_gives_the_reference_digest(data: bytes, cuts: list[int]) -> None:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    h = QuickXorHash()
    for a, b in itertools.pairwise(points):
        h.update(data[a:b])
    assert h.digest() == reference_quickxor(data)


@settings(max_examples=15, deadline=None)
@given(prefix=st.integers(min_value=0, max_value=400), seed=st.integers(0, 2**32 - 1))
def test_large_buffers_take_the_vectorised_path_exactly(prefix: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    big = rng.integers(0, 256, 3 * 10240 + 977, dtype=np.uint8).tobytes()
    head = big[:prefix]
    h = QuickXorHash()
    h.update(head)
    h.update(big[prefix:])
    assert h.digest() == reference_quickxor(big)


def test_length_is_folded_in_for_long_inputs() -> None:
    # Zeros hash to zero except the length: bytes 12..19 carry it little-endian.
    n = 5_000_000
    digest = QuickXorHash(bytes(n)).digest()
    assert digest[:12] == bytes(12)
    assert int.from_bytes(digest[12:], "little") == n


def test_file_helpers(tmp_path: Path) -> None:
    data = hashlib.sha256(b"seed").digest() * 50_000
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert quickxor_file(path, chunk_size=65_537) == reference_quickxor_fast(data)
    assert quickxor_file_b64(path) == b64(QuickXorHash(data).digest())
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert quickxor_file(empty) == bytes(20)


def reference_quickxor_fast(data: bytes) -> bytes:
    """One update of the whole buffer: the chunked file read must agree with it."""
    return QuickXorHash(data).digest()


@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not installed")
def test_agrees_with_rclone_on_larger_files(tmp_path: Path) -> None:
    """rclone's Go implementation, an independent reading of the algorithm, on sizes the
    vectors do not reach (several rows of the vectorised path, odd tails)."""
    rng = np.random.default_rng(7)
    sizes = [1_000_003, 10_240 * 3 + 159, 4 * 1024 * 1024]
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        paths.append(path)
    out = subprocess.run(
        ["rclone", "hashsum", "quickxor", "--base64", str(tmp_path)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    theirs = {line.split(None, 1)[1].strip(): line.split()[0] for line in out.splitlines()}
    for path in paths:
        # rclone's --base64 is the URL-safe alphabet; Graph's is the standard one.
        assert quickxor_file(path) == base64.urlsafe_b64decode(theirs[path.name])
