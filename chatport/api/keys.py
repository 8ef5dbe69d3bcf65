"""The bearer key of a request, checked before its route runs: who it acts for, whether its
project may send it now (rate limits), and whether its address may still try keys."""

from __future__ import annotations

from fastapi import Request

from chatport.protocol.errors import APIError
from chatport.service.auth import Principal
from chatport.service.services import Services


class KeyCheck:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def for_api(self, request: Request) -> None:
        """The API's routes (and the UI's work on a project's behalf): a key of the
        project, within its rate limits, while the server takes requests."""
        services = self.services
        services.refuse_if_draining()
        found = await self.principal(request)
        request.state.project = found.project
        # Its headers go on the response and its place is released when the response
        # ends (RequestContextMiddleware); the chat route bills it the tokens used.
        request.state.ticket = await services.limits.admit(found)

    async def any_project(self, request: Request) -> None:
        """/metrics and the status page: they name the models and their load, so with keys
        configured any valid key reads them."""
        await self.principal(request)

    async def may_read_status(self, request: Request) -> bool:
        """Whether the request may see what /metrics shows (the same rule, without a 401)."""
        try:
            await self.principal(request)
        except APIError:
            return False
        return True

    async def principal(self, request: Request) -> Principal:
        """Who the request's key belongs to; wrong keys count against its address."""
        limits = self.services.limits
        address = request.client.host if request.client else None
        token = bearer(request)
        await limits.check_address(address, token)
        try:
            found = await self.services.auth.principal_for(token)
        except APIError as exc:
            if exc.code == "invalid_api_key":  # a wrong guess; a missing key is not one
                await limits.key_failed(address)
            raise
        limits.key_worked(address, token)
        return found


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
