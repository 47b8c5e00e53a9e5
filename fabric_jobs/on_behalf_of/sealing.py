"""Credential material at rest: AES-256-GCM with the operator's key, the job's key as associated data.

A key file holds 32 random bytes, base64-encoded (`openssl rand -base64 32`). A sealed value is
version (1 byte) | key id (8 bytes: the start of the key's SHA-256) | nonce (12 bytes) | ciphertext and tag.
The key id picks the key to open it with, so a rotated key (kept as the old key) still opens what it
sealed; the associated data is the job's key, so a value copied to another job's row does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import pathlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fabric_jobs.keys import JobKey

KEY_BYTES = 32
_VERSION = b"\x01"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_CONTEXT = b"fabric-jobs job credential v1\x00"


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and never holds key material."""


class UnsealError(Exception):
    """A sealed value that does not open: another job's, sealed with a key this process lacks, or damaged."""


def read_key_file(path: pathlib.Path) -> bytes:
    """The 32-byte key in `path` (base64 text). KeyFileError in one line otherwise."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not base64 text"
        raise KeyFileError(f"key file {path}: {reason}") from None
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"key file {path}: not base64 text (make one with `openssl rand -base64 32`)") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(
            f"key file {path}: holds {len(key)} bytes, needs {KEY_BYTES} (make one with `openssl rand -base64 32`)"
        )
    return key


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:_KEY_ID_BYTES]


class Sealer:
    """Seals with the current key; opens with the current or the old one."""

    def __init__(self, current: bytes, old: bytes | None = None) -> None:
        self._current = (_key_id(current), AESGCM(current))
        self._keys = dict([self._current] + ([(_key_id(old), AESGCM(old))] if old is not None else []))

    def seal(self, key: JobKey, plaintext: bytes) -> bytes:
        key_id, cipher = self._current
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + key_id + nonce + cipher.encrypt(nonce, plaintext, _associated_data(key))

    def open(self, key: JobKey, sealed: bytes) -> bytes:
        """The plaintext; UnsealError (saying why, never what) when it does not open for this job."""
        header = len(_VERSION) + _KEY_ID_BYTES + _NONCE_BYTES
        if len(sealed) <= header or sealed[:1] != _VERSION:
            raise UnsealError("the stored credential is not in a format this version reads")
        key_id, nonce, ciphertext = sealed[1 : 1 + _KEY_ID_BYTES], sealed[1 + _KEY_ID_BYTES : header], sealed[header:]
        cipher = self._keys.get(key_id)
        if cipher is None:
            raise UnsealError(
                "the stored credential was sealed with a key this process does not have "
                "(set --token-key-file, and --token-old-key-file while rotating)"
            )
        try:
            return cipher.decrypt(nonce, ciphertext, _associated_data(key))
        except InvalidTag:
            raise UnsealError("the stored credential does not belong to this job or was altered") from None


def _associated_data(key: JobKey) -> bytes:
    return _CONTEXT + key.to_text().encode()
