"""Normalising contact data: e-mails, phone numbers (E.164), countries and name search keys."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers
from babel import Locale
from babel.numbers import list_currencies
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email


class InvalidValue(ValueError):
    pass


def normalize_email(value: str) -> str:
    """Validated and lower-cased; deliverability is not checked (no network at run time).
    The everyday shapes take `fast_email` (~1 µs against email-validator's ~22 µs, once per
    search by e-mail); what it cannot vouch for goes through email-validator."""
    text = value.strip()
    fast = fast_email(text)
    if fast is not None:
        return fast
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue(str(exc)) from None
    return result.normalized.lower()


_SIMPLE_EMAIL = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_SPECIAL_DOMAINS = tuple(SPECIAL_USE_DOMAIN_NAMES)
_SPECIAL_SET = frozenset(_SPECIAL_DOMAINS)
_SPECIAL_SUFFIXES = tuple("." + d for d in _SPECIAL_DOMAINS)  # subdomains of them


# An internationalised local part of the everyday kind ("chloé.martin", "zoë+news"): atoms of
# the ASCII characters of _SIMPLE_EMAIL and non-ASCII characters (each a letter, checked below),
# separated by single dots.
_INTL_ATOM = r"[A-Za-z0-9_+\-\u0080-\U0010ffff]+"
_INTL_LOCAL = re.compile(rf"{_INTL_ATOM}(?:\.{_INTL_ATOM})*")
_SIMPLE_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def fast_email(text: str) -> str | None:
    """The lower-cased address when email-validator accepts it and its normalised form is the
    address itself, None when only email-validator can tell.

    Two shapes qualify: plain ASCII, and an ASCII domain after a local part whose non-ASCII
    characters are all letters, already in NFC. For the second, email-validator's checks come
    down to the same: the local part matches its internationalised dot-atom, its characters
    are all "safe" (letters, digits, `_+-.`), NFC leaves it unchanged, it needs SMTPUTF8
    (allowed by default), no RFC 2142 lower-casing applies (that is for ASCII local parts only,
    and the whole address is lower-cased anyway), the domain is the plain kind the ASCII path
    accepts, and the address is at most 254 bytes of UTF-8.
    """
    if len(text) > 254:
        return None
    if text.isascii():
        low = text.lower()
        if not _SIMPLE_EMAIL.fullmatch(low):
            return None
        local, _, domain = low.partition("@")
    else:
        local, _, domain = text.partition("@")
        if not domain.isascii() or not _INTL_LOCAL.fullmatch(local):
            return None
        for ch in local:  # letters only: no marks, spaces, controls, surrogates, symbols
            if ch > "\x7f" and unicodedata.category(ch)[0] != "L":
                return None
        domain = domain.lower()
        if (not _SIMPLE_DOMAIN.fullmatch(domain) or len(text.encode("utf-8")) > 254
                or not unicodedata.is_normalized("NFC", local)):
            return None
        low = text.lower()
    if len(local) > 64 or "--" in domain or domain in _SPECIAL_SET:
        return None
    return None if domain.endswith(_SPECIAL_SUFFIXES) else low


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
