"""Logs a person reads never carry a full phone number.

``MaskingFilter`` passes every log record through ``compliance.masking.mask_text``
after formatting its message (SQL parameters at ``-v`` included) and its
traceback; ``install`` puts it on the root logger's handlers (``dialer`` does this
for every command). ``MaskingAccessLogger`` is the HTTP access log of ``dialer
serve`` and ``dialer recordings serve``: the request line is logged decoded and
masked (``/search?number=138****5678``), refused requests included, whatever
logging configuration the process has.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from compliance.masking import mask_text


class MaskingFilter(logging.Filter):
    """Masks numbers in the formatted message and the traceback of each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


def install(root: logging.Logger | None = None) -> None:
    """Put a ``MaskingFilter`` on every handler of ``root`` (default: the root logger)."""
    logger = root or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())


class MaskingAccessLogger(AbstractAccessLogger):
    """``REMOTE "METHOD PATH?QUERY HTTP/x.y" STATUS BYTES SECONDS "AGENT"``, numbers masked."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        target = mask_text(unquote(request.raw_path))
        agent = mask_text(request.headers.get("User-Agent", "-"))[:200]
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s"',
            request.remote or "-",
            request.method,
            target[:2000],
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            time,
            agent,
        )
