"""Recording files of the simulated PBX: real WAV (8 kHz, 16-bit, mono), like Asterisk's ``wav``.

The audio is what the simulated world sounds like: silence with a soft 440 Hz
blip (200 ms) every 2 s, the customer's "tone" in extensions.conf. Files are
written from a precomputed 2-second block, so a long recording costs one
``write`` per block and no per-sample Python work.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2
_BLOCK_SECONDS = 2


def _tone_block() -> bytes:
    samples = []
    blip = int(0.2 * SAMPLE_RATE)
    for i in range(_BLOCK_SECONDS * SAMPLE_RATE):
        value = int(3000 * math.sin(2 * math.pi * 440 * i / SAMPLE_RATE)) if i < blip else 0
        samples.append(value)
    return struct.pack(f"<{len(samples)}h", *samples)


_BLOCK = _tone_block()

# Raw encodings Asterisk can write besides wav (what ``format`` accepts in the simulator).
FORMATS: dict[str, str] = {
    "wav": "audio/wav",
    "sln": "audio/x-slin",
    "ulaw": "audio/basic",
    "alaw": "audio/x-alaw-basic",
}


def wav_header(n_bytes: int) -> bytes:
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + n_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        1,  # mono
        SAMPLE_RATE,
        SAMPLE_RATE * SAMPLE_WIDTH,
        SAMPLE_WIDTH,
        8 * SAMPLE_WIDTH,
        b"data",
        n_bytes,
    )


def pcm_bytes(duration: float) -> int:
    return max(0, round(duration * SAMPLE_RATE)) * SAMPLE_WIDTH


def write_recording(path: Path, fmt: str, duration: float) -> int:
    """Write ``duration`` seconds in ``fmt`` to ``path``; returns the file size."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {sorted(FORMATS)}")
    n = pcm_bytes(duration)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        if fmt == "wav":
            out.write(wav_header(n))
        if fmt in ("wav", "sln"):
            full, rest = divmod(n, len(_BLOCK))
            for _ in range(full):
                out.write(_BLOCK)
            out.write(_BLOCK[:rest])
        else:
            # G.711 silence: 0xFF (mu-law) / 0xD5 (A-law), one byte per sample.
            out.write((b"\xff" if fmt == "ulaw" else b"\xd5") * (n // SAMPLE_WIDTH))
    return path.stat().st_size
