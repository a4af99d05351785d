"""People's passwords, hashed with scrypt (memory-hard; Python's ``hashlib.scrypt``).

Parameters: N = 2**15, r = 8, p = 1 (32 MiB of memory and about 0.1 s of one core per
hash on the development machine), a 16-byte random salt, a 32-byte key. Stored as
``$scrypt$ln=15,r=8,p=1$<salt>$<key>`` (unpadded base64), so the parameters travel with
each hash: raising them later keeps old hashes verifiable, and ``needs_rehash`` says
when to store a new one at the next sign-in. The cost is the point: an attacker with a
copy of the table pays it for every guess.

Pure apart from the CPU work; callers run ``hash``/``verify`` in a worker thread
(``hashlib.scrypt`` releases the GIL).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

MIN_LENGTH = 8
MAX_LENGTH = 1024  # an upper bound keeps a hash request cheap to refuse
_PHC_RE = re.compile(
    r"\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})"  # parameters
    r"\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)"  # salt, key
)


class WeakPassword(ValueError):
    """A password this system does not accept (bad input): the message says why."""


def check_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")
    if password.strip() != password:
        raise WeakPassword("a password must not begin or end with a space or a line break")
    return password


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class PasswordHasher:
    """scrypt with cost ``2**log_n``; the defaults are the documented parameters."""

    log_n: int = 15
    r: int = 8
    p: int = 1
    salt_bytes: int = 16
    key_bytes: int = 32

    def _derive(self, password: str, salt: bytes, log_n: int, r: int, p: int, size: int) -> bytes:
        memory = 128 * r * (2**log_n) * p
        return hashlib.scrypt(
            password.encode("utf-8"),
            salt=salt,
            n=2**log_n,
            r=r,
            p=p,
            maxmem=2 * memory + (1 << 20),
            dklen=size,
        )

    def hash(self, password: str) -> str:
        salt = secrets.token_bytes(self.salt_bytes)
        key = self._derive(password, salt, self.log_n, self.r, self.p, self.key_bytes)
        return f"$scrypt$ln={self.log_n},r={self.r},p={self.p}${_b64(salt)}${_b64(key)}"

    def verify(self, password: str, stored: str) -> bool:
        """True when ``password`` matches ``stored`` (compared in constant time)."""
        match = _PHC_RE.fullmatch(stored)
        if match is None or len(password) > MAX_LENGTH:
            return False
        log_n, r, p = (int(match.group(i)) for i in (1, 2, 3))
        if not (1 <= log_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
            return False  # a tampered row must not make us burn gigabytes
        salt, key = _unb64(match.group(4)), _unb64(match.group(5))
        given = self._derive(password, salt, log_n, r, p, len(key))
        return hmac.compare_digest(given, key)

    def needs_rehash(self, stored: str) -> bool:
        match = _PHC_RE.fullmatch(stored)
        if match is None:
            return True
        return (int(match.group(1)), int(match.group(2)), int(match.group(3))) != (
            self.log_n,
            self.r,
            self.p,
        )
