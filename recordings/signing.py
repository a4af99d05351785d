"""The evidence signing key: Ed25519 signatures an outsider can check with the public key.

Audit anchors and evidence-bundle manifests are signed with one Ed25519 key. By
default it is derived from ``DIALER_NUMBER_KEY`` (the secret every recordings
deployment already holds) under its own label; ``DIALER_SIGNING_KEY_FILE`` names a
PEM private key instead (``dialer audit keygen``), so that the database's operators
need not hold it. The public key (``dialer audit public-key``) is all a regulator
or a court needs to check an anchor or a bundle: no secret leaves the system.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_LABEL = b"dialer/evidence/signing-key/v1"


class SigningKeyError(ValueError):
    """The signing key or a public key is missing or unreadable (names the file)."""


def canonical(data: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        dict(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Signer:
    key: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.key.public_key()

    @property
    def key_id(self) -> str:
        return fingerprint(self.public)

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self.key.sign(data)).decode()

    def public_pem(self) -> str:
        return public_pem(self.public)


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def verify_signature(public: Ed25519PublicKey, data: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature.encode(), validate=True)
        public.verify(raw, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def derived_signer(secret: bytes) -> Signer:
    """The signing key derived from the deployment's secret (``NumberKeys.signer``)."""
    seed = hmac.new(secret, _LABEL, "sha256").digest()
    return Signer(Ed25519PrivateKey.from_private_bytes(seed))


def signer_of(secret: bytes, key_file: str = "") -> Signer:
    """``key_file`` (``DIALER_SIGNING_KEY_FILE``) when given, else derived from ``secret``."""
    return Signer(load_private_key(Path(key_file))) if key_file else derived_signer(secret)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path}: not a readable PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read the public key ({exc.strerror})") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path}: not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path}: not an Ed25519 public key")
    return key


def write_new_key(path: Path) -> Signer:
    """A fresh Ed25519 key: ``path`` (private, 0600) and ``path.pub`` (public)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    signer = Signer(key)
    Path(str(path) + ".pub").write_text(signer.public_pem())
    return signer
