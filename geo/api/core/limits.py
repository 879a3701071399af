"""Request body size limits, enforced before the body is read (413).

A declared ``Content-Length`` above the limit is refused before a single body byte is read; a body sent
without one (chunked) is counted while it streams and refused as soon as it passes the limit, so memory
never holds more than the limit.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from geo.api import errors
from geo.api.core.responses import JSON


class BodyTooLarge(Exception):
    """The streamed body passed the route's limit."""


def limit_for(path: str, default: int, batch: int, batch_paths: tuple[str, ...]) -> int:
    """The byte limit of a request path: *batch* for paths matching a pattern of *batch_paths*, else *default*."""
    return batch if any(fnmatchcase(path, pat) for pat in batch_paths) else default


class BodyLimit:
    """Pure-ASGI middleware answering 413 for bodies over the limit of their path.

    Parameters
    ----------
    default, batch : int
        Byte limits for ordinary and batch routes (``GEO_MAX_BODY_BYTES``, ``GEO_MAX_BATCH_BODY_BYTES``).
    batch_paths : tuple of str
        ``fnmatch`` patterns of batch routes (``GEO_BATCH_BODY_PATHS``).
    """

    def __init__(self, app, default: int, batch: int, batch_paths: tuple[str, ...]):
        self.app, self.default, self.batch, self.batch_paths = app, default, batch, batch_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = limit_for(scope["path"], self.default, self.batch, self.batch_paths)
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    return await self._refuse(scope, receive, send, 400, "bad_request",
                                              "Content-Length is not a number")
                if declared > limit:
                    return await self._refuse(scope, receive, send, 413, "too_large",
                                              f"request body of {declared} bytes exceeds the limit of {limit} bytes "
                                              f"for {scope['path']}")
                break
        seen = 0
        over = False
        started = False

        async def counted():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message):
            # once the body passed the limit, whatever the app answers (FastAPI turns a failed body read into
            # a 400) is replaced by the 413
            nonlocal started
            if over:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except BodyTooLarge:
            pass
        if over and not started:
            await self._refuse(scope, receive, send, 413, "too_large",
                               f"request body exceeds the limit of {limit} bytes for {scope['path']}")

    @staticmethod
    async def _refuse(scope, receive, send, status: int, code: str, message: str):
        response = JSON(errors.body(code, message), status_code=status, headers={"Connection": "close"})
        await response(scope, receive, send)
