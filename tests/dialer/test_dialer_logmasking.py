"""Logs never carry a full number: the logging filter and the HTTP access log."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp import web

from dialer.logmasking import MaskingAccessLogger, MaskingFilter

NUMBER = "13812345678"


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = None if exc is None else (type(exc), exc, exc.__traceback__)
    return logging.LogRecord("sqlalchemy.engine", logging.INFO, __file__, 1, msg, args, exc_info)


def test_filter_masks_sql_parameters_and_tracebacks() -> None:
    record = _record("[generated in 0.0001s] %r", (NUMBER, "客户号码13987654321投诉"))
    assert MaskingFilter().filter(record)
    assert (
        record.getMessage() == "[generated in 0.0001s] ('138****5678', '客户号码139****4321投诉')"
    )
    try:
        raise ValueError(f"duplicate key number={NUMBER}")
    except ValueError as exc:
        failed = _record("insert failed", exc=exc)
    MaskingFilter().filter(failed)
    text = logging.Formatter().format(failed)
    assert NUMBER not in text and "number=138****5678" in text


async def test_access_log_masks_paths_and_queries(caplog: pytest.LogCaptureFixture) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": "no"}, status=401)

    app = web.Application()
    app.router.add_get("/{tail:.*}", refuse)
    # As ``dialer serve`` and ``recordings serve`` run it: an AppRunner with the masking logger.
    runner = web.AppRunner(app, access_log_class=MaskingAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            for path in (
                f"/api/recordings/search?number={NUMBER}&reason=x",
                "/api/recordings/files/客户13987654321",
                "/search?number=%2B86%20138%201234%205678",
            ):
                async with session.get(path) as response:
                    assert response.status == 401
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 3, lines
    joined = "\n".join(lines)
    assert NUMBER not in joined and "13987654321" not in joined and "1234 5678" not in joined
    assert '"GET /api/recordings/search?number=138****5678&reason=x HTTP/1.1" 401' in joined
    assert "/files/客户139****4321" in joined
