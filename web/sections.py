"""The one registration list of the site's sections (see ``web.context.Section``).

To add pages: make a subpackage ``web/<name>/`` that exposes ``SECTION``, with
``templates/`` and ``static/`` beside it, and add it here. The order is the
navigation's order; a person's start page is the first section they may open.
"""

from __future__ import annotations

from web.agent import SECTION as AGENT
from web.context import Section
from web.floor import SECTION as FLOOR

SECTIONS: tuple[Section, ...] = (AGENT, FLOOR,)
