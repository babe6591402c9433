"""A cap on the size of a request body, for the registry's HTTP API.

The largest request a case officer sends (a case of 500 parcels with every text at its
longest) is well under a megabyte; a bigger body is refused with 413 before it is read
into memory, parsed or validated, whether it declares its length or streams in chunks.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024


class BodyLimit:
    """Pure ASGI middleware: the body is read (at most `max_bytes`) before the app runs,
    then handed to it unchanged."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before it finished sending
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = (
            f"the request body exceeds the limit of {self.max_bytes} bytes "
            f"({self.max_bytes / 1024 / 1024:g} MiB)"
        )
        response = JSONResponse(
            status_code=413,
            content={"error": reason, "errors": [{"field": "body", "reason": reason}]},
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
