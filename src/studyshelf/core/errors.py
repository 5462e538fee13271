"""Domain errors. Services raise these; web/errors.py maps them to responses in one place."""

from __future__ import annotations


class StudyShelfError(Exception):
    """Base of every error a service may raise on purpose."""

    status = 400
    type_slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str = "", **extra: object) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class Invalid(StudyShelfError):
    status = 422
    type_slug = "invalid"
    title = "The request is not valid"

    @classmethod
    def for_field(cls, field: str, message: str) -> Invalid:
        """A refused body field, named in the problem as `field` and in `errors` (the shape of the framework's 422s)."""
        return cls(message, errors=[{"loc": ["body", field], "msg": message, "type": "value_error"}], field=field)


class NotAuthenticated(StudyShelfError):
    status = 401
    type_slug = "not-authenticated"
    title = "Authentication required"


class PermissionDenied(StudyShelfError):
    status = 403
    type_slug = "permission-denied"
    title = "Not allowed"


class NotFound(StudyShelfError):
    status = 404
    type_slug = "not-found"
    title = "Not found"


class Conflict(StudyShelfError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class TooLarge(StudyShelfError):
    status = 413
    type_slug = "too-large"
    title = "Content too large"


class RangeNotSatisfiable(StudyShelfError):
    status = 416
    type_slug = "range-not-satisfiable"
    title = "Range not satisfiable"


class TooManyRequests(StudyShelfError):
    status = 429
    type_slug = "too-many-requests"
    title = "Too many requests"


class CsrfFailed(StudyShelfError):
    status = 403
    type_slug = "csrf-failed"
    title = "CSRF check failed"


class Unavailable(StudyShelfError):
    status = 503
    type_slug = "unavailable"
    title = "Service unavailable"


class BlobIntegrityError(StudyShelfError):
    """Stored bytes failed authentication (tampered, truncated, or under an unknown key): never serve them."""

    status = 500
    type_slug = "blob-integrity"
    title = "Stored file failed its integrity check"
