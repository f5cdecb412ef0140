"""The upload workers' fragment buffer and the read that fills it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sharelift.engine.config import MIB
from sharelift.engine.reader import FragmentBuffer, SourceChanged, hash_range, read_into
from sharelift.quickxorhash import QuickXorHash


def test_the_buffer_grows_to_the_largest_fragment_and_is_reused() -> None:
    buffer = FragmentBuffer(10 * MIB)
    small = buffer.view(5000)
    assert small.nbytes == 5000
    assert len(small.obj) == 8192  # type: ignore[arg-type]  # the next power of two
    assert buffer.view(100).obj is small.obj  # no new allocation for a smaller fragment
    big = buffer.view(9 * MIB)
    assert big.nbytes == 9 * MIB and len(big.obj) == 10 * MIB  # type: ignore[arg-type]
    assert buffer.view(10 * MIB).obj is big.obj


def test_read_into_hashes_what_it_read_and_refuses_a_short_file(tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 17)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        buffer = FragmentBuffer(1 * MIB)
        hasher = QuickXorHash()
        hash_range(fd, len(data), hasher, buffer)
        expected = QuickXorHash()
        expected.update(data)
        assert hasher.b64digest() == expected.b64digest()
        view = buffer.view(100)
        read_into(fd, 1000, view, None)
        assert bytes(view) == data[1000:1100]
        with pytest.raises(SourceChanged):
            read_into(fd, len(data) - 10, buffer.view(20), None)
    finally:
        os.close(fd)
