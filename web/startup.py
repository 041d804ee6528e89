"""A setting the service cannot use stops uvicorn with the setting's one line, not a traceback."""

from __future__ import annotations

import sys

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infrastructure.settings import SettingsError


class SettingsErrorAtStartup:
    """Starlette reports a failed lifespan startup with the traceback, which uvicorn logs;
    for a SettingsError the line alone says what to fix."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_line(message: Message) -> None:
            # Starlette sends the failure while it handles the exception.
            error = sys.exception()
            if message["type"] == "lifespan.startup.failed" and isinstance(error, SettingsError):
                message = {**message, "message": str(error)}
            await send(message)

        await self.app(scope, receive, send_line)
