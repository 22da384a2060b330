"""The base of every input model: unknown fields are refused and text may not carry NUL.

NUL characters are refused at the boundary because PostgreSQL cannot store them (a database
error, once a 500) while SQLite silently would: both engines must give the same 422.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A reference to a row: ids are positive 64-bit integers, so anything else is a 422 naming the
# field rather than a database error.
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
MAX_ID = 2**63 - 1


def whole_number(raw: str | None, *, low: int = 0, high: int = MAX_ID) -> int | None:
    """A form value as an int when it is plain ASCII digits within [low, high], else None.

    `str.isdigit` also accepts "²" or "٣", which `int()` then refuses (a 500): check ASCII."""
    raw = (raw or "").strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    value = int(raw)
    return value if low <= value <= high else None


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return any(contains_nul(v) for v in value)
    return False


class StrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if contains_nul(value):
            raise ValueError("text may not contain NUL characters")
        return value
