"""Salted password hashes for the emulator's accounts (its state file never holds a password)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["hash_password", "verify_password"]

_N, _R, _P = 2**14, 8, 1
"""scrypt's cost parameters (the interactive-login figures of its paper, ~0.1 s per check)."""


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$<salt hex>$<hash hex>`` of ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches a `hash_password` result (False for None or another format)."""
    if not stored or not isinstance(password, str):
        return False
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    n, r, p = (int(value) for value in parts[1:4])
    salt, expected = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p)
    return hmac.compare_digest(digest, expected)
