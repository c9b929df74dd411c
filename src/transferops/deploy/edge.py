"""The server's edge: pure ASGI middleware that runs before any routing or parsing.

:class:`BodyLimitMiddleware` refuses what no route could take (too many or too large headers, too
large or non-UTF-8 bodies) with a 4xx naming the limit; :class:`RequestCounter` counts every
response to a predict route by model and status. Settings: :class:`EdgeSettings`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transferops.errors import ConfigError


@dataclass
class EdgeSettings:
    """Limits applied to every request before routing (``transferops serve`` flags of the same names)."""

    max_body_bytes: int = 4 * 1024 * 1024
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_header_bytes", "max_headers"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{name}: must be a positive number, got {v!r}")


PREDICT_SUFFIX = "/predict"


def _utf8_problem(body: bytes) -> str | None:
    """None if ``body`` is valid UTF-8, else a sentence naming the first bad byte."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = body[exc.start:exc.start + 4].hex(" ")
        try:
            body.decode("cp1252")
            hint = " (it looks like Latin-1/cp1252 text)"
        except UnicodeDecodeError:
            hint = ""
        return (f"body is not valid UTF-8: byte {exc.start} ({bad}) {exc.reason}{hint}; JSON must be sent "
                "encoded as UTF-8")
    return None


class BodyLimitMiddleware:
    """Pure ASGI, the server's edge: refuse too many or too large headers (431), bodies over
    ``max_bytes`` (413, by Content-Length or counted while read) and bodies that are not UTF-8 (422,
    naming the byte), before any parsing."""

    def __init__(self, app: Any, max_bytes: int, on_reject: Callable[[str], None],
                 max_header_bytes: int = 16 * 1024, max_headers: int = 100) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers

    async def _reply(self, send: Any, status: int, detail: Any) -> None:
        import json

        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_headers = scope.get("headers") or []
        if len(raw_headers) > self.max_headers:
            self.on_reject("too_many_headers")
            await self._reply(send, 431, f"{len(raw_headers)} request headers; at most {self.max_headers} "
                              "(max_headers)")
            return
        header_bytes = sum(len(k) + len(v) for k, v in raw_headers)
        if header_bytes > self.max_header_bytes:
            self.on_reject("headers_too_large")
            await self._reply(send, 431, f"request headers total {header_bytes} bytes; at most "
                              f"{self.max_header_bytes} (max_header_bytes)")
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(raw_headers)
        cl = headers.get(b"content-length")
        too_big = (f"request body exceeds max_body_bytes={self.max_bytes}; split the texts into several "
                   "requests")
        if cl is not None:
            try:
                declared = int(cl)
            except ValueError:
                await self._reply(send, 400, "Content-Length header is not an integer")
                return
            if declared > self.max_bytes:
                self.on_reject("body_too_large")
                await self._reply(send, 413, too_big)
                return
        chunks: list[bytes] = []
        total = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            part = msg.get("body", b"")
            total += len(part)
            if total > self.max_bytes:
                self.on_reject("body_too_large")
                await self._reply(send, 413, too_big)
                return
            chunks.append(part)
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        ctype = headers.get(b"content-type", b"").lower()
        if body and not ctype.startswith((b"multipart/", b"application/x-www-form-urlencoded")):
            problem = _utf8_problem(body)
            if problem is not None:
                self.on_reject("invalid_encoding")
                await self._reply(send, 422, [{"loc": ["body"], "msg": problem, "type": "invalid_encoding"}])
                return
        delivered = False

        async def replay() -> Any:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RequestCounter:
    """Pure ASGI: every response to a predict route is counted in ``transferops_requests_total``
    by model and status — 200s, 4xx from validation or the edge, 5xx, and ``499`` for a client that
    went away before its answer. The handler names the model in ``scope["transferops.model"]``."""

    def __init__(self, app: Any, counter: Any, known: Callable[[str], bool]) -> None:
        self.app = app
        self.counter = counter
        self.known = known  # only served names become label values (bounded cardinality)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(PREDICT_SUFFIX):
            await self.app(scope, receive, send)
            return
        parts = scope["path"].strip("/").split("/")
        named = parts[2] if len(parts) == 4 and parts[:2] == ["v1", "models"] else None
        scope["transferops.model"] = named if named is not None and self.known(named) else "unknown"
        status: list[int] = []

        async def counting_send(msg: Any) -> None:
            if msg["type"] == "http.response.start":
                status.append(int(msg["status"]))
            await send(msg)

        try:
            await self.app(scope, receive, counting_send)
        except BaseException:
            if not status:
                status.append(500)
            raise
        finally:
            model = scope.get("transferops.model") or "unknown"
            self.counter.labels(model, str(status[0] if status else 499)).inc()
