"""Errors in OpenAI's shape: every failure a client can see is one of these.

The body is always ``{"error": {"message", "type", "param", "code"}}`` so that the
official SDKs raise their matching exception class with ``param`` and ``code`` set.
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    status_code: int = 500
    error_type: str = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        error_type: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after  # seconds, sent as Retry-After
        if status_code is not None:
            self.status_code = status_code
        if error_type is not None:
            self.error_type = error_type

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(APIError):
    """A client error: 400 unless another status is given. OpenAI gives 401, 404, 405 and
    413 the same ``invalid_request_error`` type; the constructors below name them."""

    status_code = 400
    error_type = "invalid_request_error"


def authentication_error(message: str, code: str) -> InvalidRequestError:
    return InvalidRequestError(message, code=code, status_code=401)


def not_found_error(message: str, *, param: str | None = None, code: str | None = None) -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code=code, status_code=404)


def method_not_allowed_error(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, status_code=405)


def payload_too_large_error(message: str, code: str) -> InvalidRequestError:
    return InvalidRequestError(message, code=code, status_code=413)


def rate_limit_error(message: str, code: str, retry_after: int = 1) -> APIError:
    return APIError(message, code=code, status_code=429, error_type="requests", retry_after=retry_after)


def overloaded_error(message: str, code: str, retry_after: int = 1) -> APIError:
    """503: the request is fine; the server cannot take it now."""
    return APIError(message, code=code, status_code=503, retry_after=retry_after)


def unsupported_parameter(param: str, detail: str | None = None) -> InvalidRequestError:
    message = f"Unsupported parameter: '{param}' is not supported"
    message += f" {detail}." if detail else " by this server yet."
    return InvalidRequestError(message, param=param, code="unsupported_parameter")


def model_not_found(model: str) -> InvalidRequestError:
    return not_found_error(
        f"The model `{model}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def context_length_exceeded(limit: int, got: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"This model's maximum context length is {limit} tokens. However, your messages "
        f"resulted in {got} tokens. Please reduce the length of the messages.",
        param="messages",
        code="context_length_exceeded",
    )
