"""The one exception hierarchy for talking to border0.

    Border0Error                  base; str() never contains a token or a secret
    ├── ConfigurationError        no token for a remote API, unreadable token file, bad --api
    ├── TransportError            connection refused/reset/timed out after every retry (temporary)
    ├── DeadlineExceeded          the total retry deadline ran out (temporary)
    ├── IncompleteRead            a read a write depends on failed: nothing was written
    └── APIError                  border0 answered with an error status
        ├── BadRequest            400: invalid input, duplicate name (permanent)
        ├── Unauthorized          401: missing or invalid token (permanent)
        ├── Forbidden             403 (permanent)
        ├── NotFound              404 (permanent)
        ├── RateLimited           429 after every retry (temporary)
        └── ServerError           5xx after every retry (temporary)

Foreign exceptions (httpx) are mapped at the HTTP boundary: `raise Mapped(...) from exc`.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "BadRequest",
    "Border0Error",
    "ConfigurationError",
    "DeadlineExceeded",
    "Forbidden",
    "IncompleteRead",
    "NotFound",
    "RateLimited",
    "ServerError",
    "TransportError",
    "Unauthorized",
    "error_for_status",
]


class Border0Error(Exception):
    """Base of every error raised while talking to border0."""

    temporary: bool = False
    #: A write that failed after an attempt whose answer was lost (a timeout, a dropped
    #: connection, a 5xx): it may have been applied all the same. The client says so (and
    #: waits out its read-after-write window before reading it); whether an object found by
    #: name is ours, or a deleted one is gone, is apply's decision (apply/runner.py).
    ambiguous: bool = False


class ConfigurationError(Border0Error):
    """The client cannot be set up (no token for a remote API, unreadable token file)."""


class TransportError(Border0Error):
    temporary = True


class DeadlineExceeded(Border0Error):
    temporary = True


class IncompleteRead(Border0Error):
    """A sub-resource a read-modify-write needs (a socket's connector links, its upstream
    configuration) could not be read, so the write was not sent; temporary when the cause is."""

    def __init__(self, message: str, cause: Border0Error) -> None:
        super().__init__(f"{message}: {cause}")
        self.temporary = cause.temporary


class APIError(Border0Error):
    """border0 answered with an error status; carries the status and border0's error_message."""

    def __init__(self, status: int, message: str, method: str = "", path: str = "") -> None:
        self.status = status
        self.error_message = message
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        super().__init__(f"{where}{status} {message}".strip())


class BadRequest(APIError):
    pass


class Unauthorized(APIError):
    pass


class Forbidden(APIError):
    pass


class NotFound(APIError):
    pass


class RateLimited(APIError):
    temporary = True


class ServerError(APIError):
    temporary = True


def error_for_status(status: int, message: str, method: str = "", path: str = "") -> APIError:
    cls: type[APIError] = {
        400: BadRequest,
        401: Unauthorized,
        403: Forbidden,
        404: NotFound,
        429: RateLimited,
    }.get(status, ServerError if status >= 500 else APIError)
    return cls(status, message, method, path)
