"""Phone numbers as personal data: keyed index digests, masking and encryption.

A recording or complaint is found by number through ``HMAC-SHA256(index key,
canonical number key)``: exact search without storing or listing plaintext, and
without the dictionary attack a plain hash of an 11-digit number invites. The
plaintext number of a complaint (the one place a machine needs it: the compliance
evidence export) is stored encrypted with AES-256-GCM. Both keys are derived
from one secret, ``DIALER_NUMBER_KEY``, with distinct labels.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from compliance.masking import mask_text
from compliance.numbers import InvalidNumber, NumberPlan, mask
from recordings.signing import Signer, signer_of

KEY_ENV = "DIALER_NUMBER_KEY"
MIN_SECRET_BYTES = 16
_NONCE_BYTES = 12

__all__ = ["KEY_ENV", "InvalidNumber", "NumberKeys", "mask", "mask_text"]


class NumberKeyError(ValueError):
    """The number secret is missing or too short (a configuration error)."""


class NumberKeys:
    """The keyed digest and the cipher for phone numbers, from one secret."""

    def __init__(self, secret: str | bytes, *, plan: NumberPlan | None = None) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        if len(raw) < MIN_SECRET_BYTES:
            raise NumberKeyError(
                f"{KEY_ENV} must be at least {MIN_SECRET_BYTES} bytes (got {len(raw)}); "
                "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        self._index_key = hmac.new(raw, b"dialer/recordings/number-index/v1", "sha256").digest()
        self._cipher = AESGCM(
            hmac.new(raw, b"dialer/recordings/number-cipher/v1", "sha256").digest()
        )
        # The policy's numbering plan ([numbers]): a number written without its area
        # code is keyed with the policy's home area, as the gate and the lists key it.
        self.plan = plan or NumberPlan()
        self._secret = raw

    def signer(self, key_file: str = "") -> Signer:
        """The evidence signing key: ``key_file`` (PEM) if given, else derived from the secret."""
        return signer_of(self._secret, key_file)

    @classmethod
    def from_env(
        cls, env: dict[str, str] | None = None, *, plan: NumberPlan | None = None
    ) -> NumberKeys:
        source = os.environ if env is None else env
        secret = source.get(KEY_ENV, "")
        if not secret:
            raise NumberKeyError(f"{KEY_ENV} is not set (the secret that keys number digests)")
        return cls(secret, plan=plan)

    def canonical(self, raw: str) -> str:
        """The canonical number key; raises ``InvalidNumber`` for a malformed number."""
        return self.plan.parse(raw).key

    def digest(self, raw: str) -> str:
        """Hex HMAC-SHA256 of the canonical key: the searchable, non-reversible index value."""
        return self.digest_key(self.canonical(raw))

    def digest_key(self, canonical_key: str) -> str:
        return hmac.new(self._index_key, canonical_key.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, raw: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._cipher.encrypt(nonce, raw.encode(), b"number")

    def decrypt(self, blob: bytes) -> str:
        try:
            return self._cipher.decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], b"number"
            ).decode()
        except InvalidTag as exc:
            raise NumberKeyError(
                "an encrypted number does not decrypt: wrong DIALER_NUMBER_KEY or altered data"
            ) from exc
