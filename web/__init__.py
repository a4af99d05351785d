"""The pages of ``dialer serve``: sign-in, the agent console and the other workspaces.

Server-rendered HTML (Jinja2 through aiohttp-jinja2) on the dialer's own aiohttp
application and port, a few small ES modules served from this package, one
WebSocket per page for live pushes (``web.hub``), Chinese by default
(``web.i18n``). Sections register in ``web.sections``; README "The pages" says how.
"""
