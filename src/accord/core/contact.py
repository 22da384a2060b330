"""Normalising contact data: e-mails, phone numbers (E.164), countries and name search keys."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers
from babel import Locale
from babel.numbers import list_currencies
from email_validator import EmailNotValidError, validate_email


class InvalidValue(ValueError):
    pass


def normalize_email(value: str) -> str:
    """Validated and lower-cased; deliverability is not checked (no network at run time)."""
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue(str(exc)) from None
    return result.normalized.lower()


def normalize_phone(value: str, region: str | None) -> str:
    """E.164, reading national numbers in the record's country."""
    try:
        parsed = phonenumbers.parse(value.strip(), (region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidValue("not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# CLDR names some two-letter codes that are not ISO 3166-1 countries: groupings and unknowns
# (ZZ, EU, UN, ...), pseudo-locales (XA, XB) and ISO's "exceptionally reserved" codes for
# places that belong to an assigned country (AC and TA are in SH, IC and EA in ES, ...).
_NOT_COUNTRIES = frozenset(
    {"ZZ", "QO", "EU", "EZ", "UN", "XA", "XB", "AC", "CP", "CQ", "DG", "EA", "IC", "TA"}
)


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    return frozenset(
        code
        for code in Locale("en").territories
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    )


def normalize_country(value: str) -> str:
    code = value.strip().upper()
    if code not in country_codes():
        raise InvalidValue(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


@lru_cache(maxsize=1)
def currency_codes() -> frozenset[str]:
    """ISO 4217 codes Babel knows, without the 'no currency' and testing codes."""
    return frozenset(list_currencies()) - {"XXX", "XTS"}


def normalize_currency(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or code not in currency_codes():
        raise InvalidValue(f"{value!r} is not an ISO 4217 currency code")
    return code


_SPACE = re.compile(r"\s+")


def fold(text: str) -> str:
    """Lower-case, accent-free, single-spaced: the form names are searched in."""
    if text.isascii():  # nothing to decompose: the common case, and a hot path in batches
        return _SPACE.sub(" ", text.lower()).strip()
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACE.sub(" ", stripped.casefold()).strip()


def name_keys(first: str, last: str) -> tuple[str, str]:
    return fold(f"{last} {first}"), fold(f"{first} {last}")


def looks_like_phone(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    return digits >= 6 and all(ch.isdigit() or ch in "+-() ./" for ch in text)
