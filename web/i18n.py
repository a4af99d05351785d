"""Languages and times on the pages: Babel message catalogues, the policy's time zone.

Simplified Chinese is the default; English is available (``?lang=en``, kept in
a cookie). Message ids in templates and code are English; the catalogues under
``web/locale/<locale>/LC_MESSAGES/messages.po`` give the translations. They
are read and compiled in memory at start-up (no build step, no ``.mo`` in the
repository). To add strings::

    pybabel extract -F web/babel.cfg -o web/locale/messages.pot web
    pybabel update -i web/locale/messages.pot -d web/locale

then translate the new ``msgstr`` entries (a test fails while one is empty).

Every time a person reads is shown in the policy's time zone, written the way
people there read it (``2026年12月3日 10:30``, in English ``Dec 3, 2026, 10:30``).
"""

from __future__ import annotations

import contextvars
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from babel import Locale
from babel.dates import format_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).with_name("locale")
DEFAULT_LOCALE = "zh_Hans_CN"
# The language a page can be switched to (cookie value) -> Babel locale and the catalogue.
LANGUAGES: dict[str, tuple[str, str]] = {
    "zh": ("zh_Hans_CN", "zh_Hans"),
    "en": ("en_GB", "en"),
}
DEFAULT_LANGUAGE = "zh"
LANG_COOKIE = "lang"


def N_(message: str) -> str:
    """Marks a message id for extraction where the text is chosen at run time."""
    return message


# Words the pages show from values (roles, agent states): extracted from here.
RUNTIME_MESSAGES = (
    N_("admin"),
    N_("compliance"),
    N_("supervisor"),
    N_("agent"),
)

_current: contextvars.ContextVar[str] = contextvars.ContextVar("web_lang", default=DEFAULT_LANGUAGE)


def load_catalogue(locale_dir: Path, catalogue: str) -> NullTranslations:
    """The compiled translations of one catalogue (an empty one when it has no file)."""
    po = locale_dir / catalogue / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as fh:
        parsed = read_po(fh, locale=catalogue)
    buf = io.BytesIO()
    write_mo(buf, parsed)
    buf.seek(0)
    return Translations(fp=buf)


@dataclass(frozen=True)
class I18n:
    """Every language's translations and the time zone people read times in."""

    tz: tzinfo
    translations: dict[str, NullTranslations]

    @classmethod
    def load(cls, tz: tzinfo, locale_dir: Path = LOCALE_DIR) -> I18n:
        return cls(
            tz, {lang: load_catalogue(locale_dir, cat) for lang, (_, cat) in LANGUAGES.items()}
        )

    # ------------------------------------------------------------ the current language
    @staticmethod
    def language() -> str:
        return _current.get()

    @staticmethod
    @contextmanager
    def using(language: str) -> Iterator[None]:
        token = _current.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)
        try:
            yield
        finally:
            _current.reset(token)

    @staticmethod
    def set_language(language: str) -> None:
        """For the rest of this request (the middleware's context), speak ``language``."""
        _current.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)

    def locale(self) -> Locale:
        return Locale.parse(LANGUAGES[self.language()][0])

    def gettext(self, message: str) -> str:
        return self.translations[self.language()].ugettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations[self.language()].ungettext(singular, plural, n)

    # ------------------------------------------------------------ times
    def local(self, at: datetime) -> datetime:
        if at.tzinfo is None:
            raise ValueError(f"a naive time cannot be shown to a person: {at!r}")
        return at.astimezone(self.tz)

    def when(self, at: datetime | None, fmt: str = "medium") -> str:
        """A date and time in the policy's zone, to the minute (no seconds, no microseconds)."""
        if at is None:
            return ""
        local = self.local(at)
        if fmt == "time":
            return local.strftime("%H:%M")
        day = format_skeleton(
            {"medium": "yMMMEd", "short": "MMMd", "date": "yMMMd"}[fmt], local, locale=self.locale()
        )
        return day if fmt == "date" else f"{day} {local:%H:%M}"

    def iso_local(self, at: datetime) -> str:
        """``YYYY-MM-DDTHH:MM`` in the policy's zone, the value of a datetime-local input."""
        return self.local(at).strftime("%Y-%m-%dT%H:%M")

    def parse_local(self, text: str) -> datetime:
        """A datetime-local input's value (``YYYY-MM-DDTHH:MM``) read in the policy's zone."""
        naive = datetime.fromisoformat(text)
        if naive.tzinfo is not None:
            return naive
        return naive.replace(tzinfo=self.tz)
