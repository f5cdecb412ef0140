"""AES-256-CBC as the Migration API uses it: package blobs in, queue messages and logs out.

SharePoint documents AES-256-CBC with a 32-byte key and a fresh 16-byte IV per blob, kept in
the blob's metadata as base64 (sp-dev-docs `docs/apis/migration-azure.md`, "Encryption";
`migration-api-encryption.md`). The padding is not documented: PKCS7 is .NET's default for
`AesCryptoServiceProvider`, the class those pages name, so this module assumes it.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 32
IV_BYTES = 16


class DecryptionError(Exception):
    """The bytes do not decrypt with this key and IV (wrong key, IV or padding)."""


def new_key() -> bytes:
    """A fresh AES-256 key, as ProvisionMigrationContainers hands out."""
    return secrets.token_bytes(KEY_BYTES)


def parse_key(text: object) -> bytes | None:
    """The 32-byte key in a base64 string, or None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == KEY_BYTES else None


def parse_iv(text: str | None) -> bytes | None:
    """The 16-byte IV in a base64 string, or None when it is missing or malformed."""
    if not text:
        return None
    try:
        iv = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return iv if len(iv) == IV_BYTES else None


class Decryption:
    """AES-256-CBC decryption part by part, for a blob read as it arrives: `update` returns
    the plaintext known so far (PKCS7 holds the last block back), `finalize` the rest once
    the padding is checked."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        self._unpadder = padding.PKCS7(128).unpadder()
        self._size = 0

    def update(self, data: bytes) -> bytes:
        self._size += len(data)
        return self._unpadder.update(self._decryptor.update(data))

    def finalize(self) -> bytes:
        """The last plaintext; raises DecryptionError."""
        if not self._size or self._size % 16:
            raise DecryptionError("the ciphertext is not a whole number of AES blocks")
        last = self._unpadder.update(self._decryptor.finalize())
        try:
            return last + self._unpadder.finalize()
        except ValueError as exc:
            raise DecryptionError("bad padding: wrong key or IV") from exc


def decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-256-CBC decryption with PKCS7 padding removed; raises DecryptionError."""
    decryption = Decryption(key, iv)
    return decryption.update(data) + decryption.finalize()


def encrypt(key: bytes, data: bytes) -> tuple[bytes, bytes]:
    """AES-256-CBC with PKCS7 padding under a fresh IV; returns (iv, ciphertext)."""
    iv = secrets.token_bytes(IV_BYTES)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv, encryptor.update(padded) + encryptor.finalize()
