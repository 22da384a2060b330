"""Optimistic concurrency over HTTP: ETag is the record version, PATCH/DELETE need If-Match."""

from __future__ import annotations

from accord.core.errors import PreconditionFailed, PreconditionRequired, ValidationProblem


def etag(version: int) -> str:
    return f'"{version}"'


def require_if_match(header: str | None, current_version: int) -> int:
    """Return the version the client saw; 428 without a header, 412 when it is stale."""
    if header is None or not header.strip():
        raise PreconditionRequired(
            "this request needs an If-Match header with the record's ETag", field="If-Match"
        )
    value = header.strip()
    if value == "*":
        return current_version
    value = value.removeprefix("W/").strip('"')
    try:
        seen = int(value)
    except ValueError:
        raise ValidationProblem(
            "If-Match must be the ETag returned for the record", field="If-Match"
        ) from None
    if seen != current_version:
        raise PreconditionFailed(
            f"the record is at version {current_version}, not {seen}; reload and retry",
            field="If-Match",
        )
    return seen
