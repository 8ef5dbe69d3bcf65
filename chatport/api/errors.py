"""Every failure leaves as OpenAI's error body, whatever raised it."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from chatport.api.responses import OrjsonResponse
from chatport.protocol.errors import APIError, InvalidRequestError, method_not_allowed_error, not_found_error
from chatport.protocol.validation import to_openai_error

log = logging.getLogger("chatport.api")


def error_response(error: APIError) -> OrjsonResponse:
    headers = {"retry-after": str(error.retry_after)} if error.retry_after is not None else None
    return OrjsonResponse(error.body(), status_code=error.status_code, headers=headers)


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
            return error_response(method_not_allowed_error(f"Method not allowed ({where})"))
        return error_response(APIError(str(exc.detail), status_code=exc.status_code, error_type="invalid_request_error"))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> OrjsonResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(APIError("The server had an error while processing your request. Sorry about that!"))


__all__ = ["InvalidRequestError", "error_response", "install_error_handlers"]
