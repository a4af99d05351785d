"""Start-up checks of the PBX: the dialplan contexts and prompts the configuration relies on.

Checked through ARI only, read-only, before the first call:

* a dialplan context the dialer hands calls to (``[dialer-amd]`` when AMD is
  on, ``[dialer-abandon]`` when the abandon message is played by the dialplan)
  must have its ``s`` extension. ARI has no dialplan resource, but
  ``GET /deviceStates/Local%2Fs%40<context>`` asks the Local channel driver,
  which answers ``INVALID`` exactly when ``s@<context>`` does not exist
  (``local_devicestate`` in Asterisk's ``core_local.c``). A missing context is
  an error: every abandoned customer would be hung up in silence, or every
  answered call would fail AMD;
* the prompts (``GET /sounds/{soundId}``): a missing site prompt of
  ``[dialer-abandon]`` is a warning when its stock fall-back exists (the
  dialplan plays that one instead), an error when the fall-back is missing too;
  with no dialplan abandon context, ``abandon_media`` must exist.

Each finding says what is wrong and how to fix it. ``dialer serve`` refuses to
start on an error; ``dialer doctor`` can print the same list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

from dialer.ari.client import AriClient
from dialer.ari.errors import AriError, AriNotFound
from dialer.calls.book import RunnerConfig

logger = logging.getLogger(__name__)

# The site's own abandon message ([dialer-abandon] in asterisk_conf/extensions.conf)
# and the stock prompt the dialplan plays instead when it is missing.
ABANDON_PROMPT = "dialer/abandon-message"
ABANDON_FALLBACK = "vm-nobodyavail"
# [dialer-abandon]'s site prompts -> the stock prompts it falls back on (all must exist).
ABANDON_PROMPTS: dict[str, tuple[str, ...]] = {
    ABANDON_PROMPT: (ABANDON_FALLBACK,),
    "dialer/press-9-optout": ("vm-press", "digits/9"),
    "dialer/optout-failed-call-us": ("sorry", "please-try-again"),
    "dialer/optout-done": ("removed", "goodbye"),
}
CONF_HINT = "asterisk_conf/extensions.conf"
PROMPT_HINT = "record it as asterisk_conf/README.md says"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.problem}; fix: {self.fix}"


@dataclass(frozen=True, slots=True)
class PbxNeeds:
    """What the dialer's configuration relies on in the dialplan."""

    amd_context: str | None  # None: AMD is off
    abandon_context: str  # "": the dialer plays abandon_media itself
    abandon_media: str

    @classmethod
    def of(cls, config: RunnerConfig) -> PbxNeeds:
        return cls(
            amd_context=config.amd_context if config.amd else None,
            abandon_context=config.abandon_context,
            abandon_media=config.abandon_media,
        )


async def context_exists(client: AriClient, context: str, extension: str = "s") -> bool:
    """True when ``extension@context`` exists in Asterisk's dialplan (Local device state)."""
    return await client.device_state(f"Local/{extension}@{context}") != "INVALID"


async def sound_exists(client: AriClient, sound_id: str) -> bool:
    """``GET /sounds/{soundId}``: True when Asterisk has the prompt in some format.

    A sound id with a directory keeps its slash percent-encoded: res_ari decodes
    each path segment after splitting the path (its URI handler is registered
    with ``no_decode_uri``), so ``dialer%2Fabandon-message`` is one ``soundId``.
    """
    try:
        await client.request("GET", "/sounds/" + quote(sound_id, safe=""))
    except AriNotFound:
        return False
    return True


async def _context(client: AriClient, context: str, consequence: str, fix: str) -> list[Finding]:
    if await context_exists(client, context):
        return []
    problem = f"dialplan context [{context}] (extension s) is missing on Asterisk: {consequence}"
    return [Finding(Severity.ERROR, problem, fix)]


async def _abandon_prompts(client: AriClient, context: str) -> list[Finding]:
    found: list[Finding] = []
    for prompt, fallbacks in ABANDON_PROMPTS.items():
        if await sound_exists(client, prompt):
            continue
        missing = [f for f in fallbacks if not await sound_exists(client, f)]
        if missing:
            found.append(
                Finding(
                    Severity.ERROR,
                    f"prompt {prompt!r} and its stock fall-back {', '.join(map(repr, missing))} "
                    f"are missing on Asterisk: [{context}] would play nothing there",
                    f"{PROMPT_HINT} (sounds/<lang>/{prompt}.wav) or install "
                    "asterisk-core-sounds-en",
                )
            )
        else:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"prompt {prompt!r} is missing on Asterisk: [{context}] plays the stock "
                    f"{' + '.join(map(repr, fallbacks))} instead"
                    + (
                        " and reads out the caller ID, which does not name the company"
                        if prompt == ABANDON_PROMPT
                        else ""
                    ),
                    f"{PROMPT_HINT} (sounds/<lang>/{prompt}.wav)",
                )
            )
    return found


async def check_pbx(client: AriClient, needs: PbxNeeds) -> list[Finding]:
    """Every problem found, errors and warnings; ARI failing mid-check is a warning."""
    found: list[Finding] = []
    try:
        if needs.amd_context is not None:
            found += await _context(
                client,
                needs.amd_context,
                "no answered call could go through answering-machine detection",
                f"load [{needs.amd_context}] from {CONF_HINT} ('dialplan reload'), "
                "or set dialer.amd = false",
            )
        if needs.abandon_context:
            found += await _context(
                client,
                needs.abandon_context,
                "abandoned customers would be hung up in silence, with no information "
                "message and no opt-out",
                f"load [{needs.abandon_context}] from {CONF_HINT} ('dialplan reload'), or set "
                'dialer.abandon_context = "" to play dialer.abandon_media over ARI (no opt-out)',
            )
            if not found:
                found += await _abandon_prompts(client, needs.abandon_context)
        else:
            media = needs.abandon_media
            sound = media.removeprefix("sound:")
            if media.startswith("sound:") and not await sound_exists(client, sound):
                found.append(
                    Finding(
                        Severity.ERROR,
                        f"dialer.abandon_media {media!r} is missing on Asterisk: abandoned "
                        "customers would hear nothing",
                        "install the prompt (asterisk-core-sounds-en) or name one that exists",
                    )
                )
    except AriError as exc:
        found.append(
            Finding(
                Severity.WARNING,
                f"cannot check the dialplan and prompts over ARI ({exc})",
                "check that res_ari_device_states and res_ari_sounds are loaded; the "
                "abandon and AMD paths are unverified",
            )
        )
    return found


def report(found: Sequence[Finding]) -> list[Finding]:
    """Log every finding; the errors, for the caller to refuse to start."""
    for f in found:
        if f.severity is Severity.WARNING:
            logger.warning("PBX check: %s", f)
        else:
            logger.error("PBX check: %s", f)
    return [f for f in found if f.severity is Severity.ERROR]
