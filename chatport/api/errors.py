"""Every failure leaves as OpenAI's error body, whatever raised it."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from chatport.api.responses import OrjsonResponse
from chatport.protocol.errors import APIError, InvalidRequestError, method_not_allowed_error, not_found_error
from chatport.protocol.validation import to_openai_error


def error_response(error: APIError, headers: dict[str, str] | None = None) -> OrjsonResponse:
    headers = dict(headers or {})
    if error.retry_after is not None:
        headers["retry-after"] = str(error.retry_after)
    return OrjsonResponse(error.body(), status_code=error.status_code, headers=headers)


_METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH")


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path, for the Allow header a 405 must carry.
    (The router's own header names only the first matching route's methods.)"""
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in request.app.routes)
    ]
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(_request: Request, exc: APIError) -> OrjsonResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> OrjsonResponse:
        errors = [dict(e) for e in exc.errors()]
        for e in errors:
            # FastAPI prefixes where the value came from; OpenAI names only the parameter.
            e["loc"] = tuple(e["loc"][1:]) if e["loc"] and e["loc"][0] in ("query", "path", "body") else tuple(e["loc"])
        return error_response(to_openai_error(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> OrjsonResponse:
        where = f"{request.method} {request.url.path}"
        if exc.status_code == 404:
            return error_response(not_found_error(f"Invalid URL ({where})"))
        if exc.status_code == 405:
            return error_response(
                method_not_allowed_error(f"Method not allowed ({where})"), headers={"allow": allowed_methods(request)}
            )
        return error_response(APIError(str(exc.detail), status_code=exc.status_code, error_type="invalid_request_error"))

    # Other exceptions are answered by RequestContextMiddleware, which, unlike a handler
    # here, leaves the connection open and keeps the request id on the 500.


__all__ = ["InvalidRequestError", "error_response", "install_error_handlers"]
