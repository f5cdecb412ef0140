"""Tamper-proof tokens for the emulator's pre-authenticated URLs (downloads, copy monitors,
delta links): a payload and an HMAC-SHA256 under a secret kept in the database, so URLs handed
out stay valid across restarts of the same data folder."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from sharelift.emulator.store.database import Database

_MAC_BYTES = 16


class Signer:
    """Signs and checks URL tokens with the data folder's own secret."""

    def __init__(self, db: Database) -> None:
        secret = db.meta("secret")
        if secret is None:
            secret = secrets.token_hex(32)
            db.set_meta("secret", secret)
        self._secret = bytes.fromhex(secret)

    def sign(self, payload: str) -> str:
        """A URL-safe token carrying `payload` (readable by anyone, forgeable by no one)."""
        raw = payload.encode()
        mac = hmac.new(self._secret, raw, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(raw + mac).decode("ascii").rstrip("=")

    def unsign(self, token: str) -> str | None:
        """The payload of a token this signer made, or None for anything else."""
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            return None
        raw, mac = blob[:-_MAC_BYTES], blob[-_MAC_BYTES:]
        good = hmac.new(self._secret, raw, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, good):
            return None
        return raw.decode("utf-8", "replace")
