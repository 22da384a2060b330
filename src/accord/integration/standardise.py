"""Standardising the raw values silos send into the canonical forms identity resolution compares.

Every silo writes the same person differently: capitals, swapped name parts, national phone
numbers, day-first or month-first dates, postcodes that lost their leading zero in a
spreadsheet. Each standardiser here turns one kind of value into a single canonical form and
raises `InvalidValue` (with a reason a person can read) when it cannot; `standardise_profile`
applies them to a whole record and files every rejected value under `flags`, so nothing is ever
silently dropped (the raw value stays in the source record).

Country data (names in many languages, ISO 3166 alpha-3 and numeric aliases, currency names and
symbols, month names, date orders) comes from CLDR through Babel; phone numbering plans come from
phonenumbers; e-mail syntax from email-validator. Lookups are built once and cached, and the two
costly library calls (phone parsing, e-mail validation) have a fast path for the common shapes
that decides exactly as the library does and falls back to it for everything else. Within a
profile, the values that repeat from record to record (places, surnames, postcodes, dates) are
memoised with their outcome, value or flag alike.
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, NamedTuple

from babel import Locale, localedata
from babel.core import UnknownLocaleError, get_global
from babel.numbers import get_decimal_symbol, get_territory_currencies
from phonenumbers import SUPPORTED_REGIONS, NumberParseException, PhoneMetadata, parse
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from accord.core.contact import (
    InvalidValue,
    country_codes,
    currency_codes,
    fold,
    normalize_currency,
    normalize_email,
    normalize_phone,
)

__all__ = [
    "PROFILE_FIELDS",
    "InvalidValue",
    "Standardised",
    "split_full_name",
    "split_title",
    "standardise_address_line",
    "standardise_birth_date",
    "standardise_country",
    "standardise_currency",
    "standardise_date",
    "standardise_email",
    "standardise_gender",
    "standardise_language",
    "standardise_name",
    "standardise_amount",
    "standardise_phone",
    "standardise_postcode",
    "standardise_profile",
    "standardise_region",
]

PROFILE_FIELDS: tuple[str, ...] = (
    "title",
    "first_name",
    "last_name",
    "full_name",
    "gender",
    "date_of_birth",
    "email",
    "phone",
    # a whole address on one line: split into address_line1, postcode, city where possible
    "address",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postcode",
    "country",
    "national_id",
    "company",
    "job_title",
    "language",
    "currency",
)

_PROFILE_SET = frozenset(PROFILE_FIELDS)
# Column sizes of SourceProfile: a longer value is flagged rather than failing the insert.
_MAX_LENGTH = {
    "title": 40, "first_name": 100, "last_name": 100, "full_name": 200, "gender": 20,
    "email": 254, "phone": 20, "address": 400, "address_line1": 200, "address_line2": 200,
    "city": 120, "region": 120, "postcode": 20, "national_id": 64, "company": 200,
    "job_title": 120, "language": 20,
}
# Babel locales whose names (countries, languages, currencies, months) are recognised.
_NAME_LOCALES = ("en", "de", "fr", "es", "it", "nl", "sv", "pt", "da", "nb", "fi", "pl", "cs",
                 "hu", "ro", "tr", "el", "ru")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'",
                              "\u02bc": "'"})
_KEY_JUNK = re.compile(r"[\W_]+")


@dataclass
class Standardised:
    """Clean values by canonical field, and the reason for every raw value that was rejected."""

    values: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)


def _clean(text: str) -> str:
    """NFC, one kind of apostrophe, single spaces: the form every text standardiser starts from."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES)
    elif "`" in text:
        text = text.replace("`", "'")
    return " ".join(text.split())


def _key(text: str) -> str:
    """Folded letters and digits only: the key names (countries, languages...) are looked up by."""
    return _KEY_JUNK.sub("", fold(text))


def _name_table(entries: list[tuple[str, str]]) -> dict[str, str]:
    """A key -> code table that leaves out keys naming two different codes."""
    table: dict[str, str] = {}
    ambiguous: set[str] = set()
    for name, code in entries:
        key = _key(name)
        if not key:
            continue
        if table.setdefault(key, code) != code:
            ambiguous.add(key)
    for key in ambiguous:
        del table[key]
    return table


# --- names ---------------------------------------------------------------------------------

# Surname particles written lower-case inside a name ("Hans von Müller", "Maria de la Cruz").
# Single letters (Portuguese "e", Spanish "y") are left out: they are more often initials.
_PARTICLES = frozenset({"van", "von", "vom", "de", "der", "den", "des", "del", "da", "das", "dos",
                        "du", "ter", "ten", "zu", "zum", "zur", "af", "av"})
# Particles lower-case inside a name, but capitalised when a surname they start is shouted
# ("LE PEN" -> "Le Pen", "DI MAIO" -> "Di Maio", but "Jean de la Fontaine").
_INNER_PARTICLES = frozenset({"la", "le", "les", "las", "los", "di", "della", "dello", "delle",
                              "dei", "degli", "dal", "dalla", "dalle", "het", "und", "al", "bin",
                              "binti", "bint", "ibn"})
# Words that start a surname when a full name is split ("Maria | de la Cruz", "Luigi | Di Maio").
_SURNAME_PREFIXES = _PARTICLES | _INNER_PARTICLES
# After these, the part following an apostrophe is capitalised: O'Neill, D'Angelo, Dell'Acqua.
_APOSTROPHE_PREFIXES = frozenset({"dell", "dall", "nell", "sant", "all"})
_NAME_SEPARATORS = re.compile(r"([-.])")
_NAME_BAD = re.compile(r"[^\w\s'\-.,]|[\d_]")
# Spaces around a hyphen inside a name: "Jean - Luc" is one given name, "Jean-Luc".
_HYPHEN_SPACING = re.compile(r"(?<=\w) ?- ?(?=\w)")

_TITLES = (
    ("Mr", "mister"), ("Mrs", "missus"), ("Ms",), ("Miss",), ("Mx",), ("Dr", "doctor"),
    ("Prof", "professor"), ("Sir",), ("Dame",), ("Lord",), ("Lady",), ("Rev", "revd", "reverend"),
    ("Herr", "hr"), ("Frau",), ("Dhr",), ("Mevr", "mw", "mevrouw"), ("M.", "monsieur"),
    ("Mme", "madame"), ("Mlle", "mademoiselle"), ("Sr", "señor"), ("Sra", "señora"),
    ("Srta", "señorita"), ("Sig", "signor", "signore"), ("Sig.ra", "signora"),
    ("Sig.na", "signorina"), ("Dott", "dottore"), ("Dott.ssa", "dottoressa"), ("Ing",),
    ("Avv", "avvocato"),
)
# folded spelling without its final dot -> canonical title
_TITLE_FORMS = {fold(form).rstrip("."): forms[0] for forms in _TITLES for form in forms}
# Titles that are also initials or given names unless written with their dot ("M. Dupont").
_TITLE_NEEDS_DOT = frozenset({"m", "ing"})


def _title_key(word: str) -> str:
    return (word.casefold() if word.isascii() else fold(word)).rstrip(".,")


def _cap(text: str) -> str:
    low = text.lower()
    if len(low) > 3 and low.startswith("mc") and low[2].isalpha():
        return "Mc" + low[2].upper() + low[3:]
    return low[:1].title() + low[1:]


def _deliberate_capitals(part: str) -> bool:
    """"McDonald", "DeVito", "MacArthur": inner capitals someone typed on purpose are kept."""
    if len(part) < 4 or not part[0].isupper() or part.isupper():
        return False
    inner = False
    for i, ch in enumerate(part):
        if ch.isupper():
            if i + 1 >= len(part) or not part[i + 1].islower():
                return False
            inner = inner or i > 0
    return inner


def _case_part(part: str) -> str:
    return part if _deliberate_capitals(part) else _cap(part)


def _case_segment(segment: str) -> str:
    if "'" not in segment:
        return _case_part(segment)
    pieces = segment.split("'")
    out = [_case_part(pieces[0]) if pieces[0] else ""]
    for before, piece in zip(pieces, pieces[1:], strict=False):
        if not piece:
            out.append("")
        elif len(before) == 1 or before.lower() in _APOSTROPHE_PREFIXES:
            out.append(_case_part(piece))
        else:
            out.append(piece if _deliberate_capitals(piece) else piece.lower())
    return "'".join(out)


def _case_word(word: str, small: frozenset[str] = frozenset()) -> str:
    """Capitalise each part of a hyphenated or dotted word, keeping `small` words lower-case."""
    if "-" not in word and "." not in word:
        return _case_segment(word)
    out = []
    first = True
    for piece in _NAME_SEPARATORS.split(word):
        if not piece or piece in "-.":
            out.append(piece)
            continue
        out.append(piece.lower() if not first and piece.lower() in small else _case_segment(piece))
        first = False
    return "".join(out)


def _check_name(text: str) -> None:
    if not any(ch.isalpha() for ch in text):
        raise InvalidValue(f"{text!r} has no letters: not a name")
    for match in _NAME_BAD.finditer(text):
        ch = match.group()
        if not unicodedata.category(ch).startswith("M"):
            raise InvalidValue(f"{ch!r} does not belong in a name")


def _name_case(text: str) -> str:
    words = _HYPHEN_SPACING.sub("-", text).split(" ")
    last = len(words) - 1
    out = []
    for i, word in enumerate(words):
        low = word.lower()
        if low in _PARTICLES and i < last:
            out.append(word if i == 0 and word == low.capitalize() else low)
        elif low in _INNER_PARTICLES and i < last and (i > 0 or word == low):
            out.append(low)
        else:
            out.append(_case_word(word))
    return " ".join(out)


def _settled(case: Callable[[str], str], text: str) -> str:
    """`case` applied until it no longer changes anything: a few letters change their form when
    their case does ("ŉ" upper-cases to "ʼN"), so one pass is not always a fixed point."""
    result = case(text)
    if result.isascii():
        return result
    for _ in range(3):
        again = case(_clean(result))
        if again == result:
            break
        result = again
    return unicodedata.normalize("NFC", result)


@lru_cache(maxsize=65536)
def standardise_name(value: str) -> str:
    """Case and whitespace: "o'NEILL" -> "O'Neill", "mcdonald" -> "McDonald", "JEAN-PIERRE" ->
    "Jean-Pierre". Particles are lower-case inside a name ("Hans von Müller"); a leading one
    keeps its capital if it was written with one ("Van Enschot", but "VAN ENSCHOT" ->
    "van Enschot"); "le", "di", "al"... keep theirs when shouted ("LE PEN" -> "Le Pen").
    "Jean - Luc" is "Jean-Luc". Digits and symbols other than - ' . , make the value invalid."""
    text = _clean(value)
    _check_name(text)
    return _settled(_name_case, text)


@lru_cache(maxsize=65536)
def split_title(value: str) -> tuple[str | None, str]:
    """Leading salutations and academic titles, canonically spelled, and the rest of the name:
    "Dr. Hans Müller" -> ("Dr", "Hans Müller"); "Prof. Dr. Anna Berg" -> ("Prof Dr", ...).
    Spaces around a hyphen go: "Jean - Luc" is one word, as names are split into words."""
    words = _HYPHEN_SPACING.sub("-", _clean(value)).split(" ")
    titles: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        key = _title_key(word)
        canonical = _TITLE_FORMS.get(key)
        if canonical is None:
            break
        if key in _TITLE_NEEDS_DOT and not word.rstrip(",").endswith("."):
            break
        if canonical == "M." and len(words) - i - 1 < 2:
            break
        titles.append(canonical)
        i += 1
    return (" ".join(titles) or None), " ".join(words[i:])


def _caps_run(words: list[str]) -> bool:
    return (all(w.isupper() and sum(ch.isalpha() for ch in w) >= 2 for w in words)
            and any(sum(ch.isalpha() for ch in w) >= 3 for w in words))


def _only_surname(words: list[str], cut: int) -> bool:
    """Whether the words before `cut` are particles of the surname rather than a given name:
    "van der BERG", "Van der Berg", "DE LA CRUZ" are all surname. Particles read as such when
    one of them is written lower-case (and the whole name is not), or when two or more come
    together in a name written in one case; capitalised ones may be a given name ("Al Gore",
    "Al Di Meola")."""
    run = 0
    while run < len(words) - 1 and words[run].lower() in _SURNAME_PREFIXES:
        run += 1
    if not 0 < cut <= run:
        return False
    one_case = all(w.islower() for w in words) or all(w.isupper() for w in words)
    return run >= 2 if one_case else any(w.islower() for w in words[:run])


@lru_cache(maxsize=65536)
def _split_name(value: str) -> tuple[str | None, str, str]:
    title, rest = split_title(value)
    if "," in rest:
        last, _, first = rest.partition(",")
        if last.strip():
            more, first = split_title(first.replace(",", " "))
            title = " ".join(t for t in (title, more) if t) or None
            first = first.strip()
            return title, standardise_name(first) if first else "", standardise_name(last)
        rest = rest.replace(",", " ")
    words = rest.split()
    if not words:
        if title is None:
            raise InvalidValue(f"{value!r} has no letters: not a name")
        return title, "", ""
    if len(words) == 1:
        return title, "", standardise_name(words[0])
    cut = None
    if not rest.isupper():
        # "DUPONT Jean" / "Jean DE LA FONTAINE": the surname is the part written in capitals
        lead = next((i for i, w in enumerate(words) if not w.isupper()), len(words))
        # ("JAN van BERG": a given name does not start with a particle)
        if (0 < lead < len(words) and _caps_run(words[:lead])
                and words[lead].lower() not in _SURNAME_PREFIXES):
            first, last = " ".join(words[lead:]), " ".join(words[:lead])
            return title, standardise_name(first), standardise_name(last)
        tail = next((i for i in range(len(words) - 1, -1, -1) if not words[i].isupper()), -1) + 1
        if 0 < tail < len(words) and _caps_run(words[tail:]):
            cut = tail
    if cut is None:
        cut = len(words) - 1
    while cut > 1 and words[cut - 1].lower() in _SURNAME_PREFIXES:  # "Jean | de la FONTAINE"
        cut -= 1
    if _only_surname(words, cut):
        return title, "", standardise_name(rest)
    return title, standardise_name(" ".join(words[:cut])), standardise_name(" ".join(words[cut:]))


def split_full_name(value: str) -> tuple[str, str]:
    """(first, last), both standardised, titles dropped: "SMITH, John" -> ("John", "Smith"),
    "Dr. Hans von Müller" -> ("Hans", "von Müller"). A single word is taken as the last name,
    and so are particles with a surname ("van der Berg" -> ("", "van der Berg"))."""
    _, first, last = _split_name(value)
    return first, last


def _standardise_title(value: str) -> str:
    title, rest = split_title(value)
    if title and not rest:
        return title
    text = _clean(value)
    if not any(ch.isalpha() for ch in text):
        raise InvalidValue(f"{value!r} is not a title")
    return text


# --- e-mail --------------------------------------------------------------------------------

def standardise_email(value: str) -> str:
    """Validated (syntax only: no network at run time) and lower-cased."""
    text = value.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].strip()
    if len(text) > 2 and text[0] == "<" and text[-1] == ">":
        text = text[1:-1].strip()
    return normalize_email(text)


# --- phones --------------------------------------------------------------------------------

_PHONE_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager",
                "uan", "voicemail", "fixed_line", "mobile")
_Desc = tuple[frozenset[int], re.Pattern[str]]


class _Plan(NamedTuple):
    """A region's numbering plan, compiled once."""

    cc: str
    general: _Desc
    # by number length, one pattern matching the numbers of every type that has that length
    typed: dict[int, re.Pattern[str]]
    leading: re.Pattern[str] | None
    prefix: re.Pattern[str] | None  # national prefix for parsing
    idd: re.Pattern[str] | None
    transforms: bool  # national prefix transform rules: left to phonenumbers


# phonenumbers reads a number from its first digit or plus sign on
_PHONE_START = re.compile(r"[+\uff0b\d]")


def _phone_digits(text: str) -> str:
    """Without the punctuation people write numbers with (replace() beats translate() here)."""
    return (text.replace(" ", "").replace("-", "").replace(".", "").replace("(", "")
            .replace(")", ""))


def _desc(desc: Any) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = frozenset(n for n in desc.possible_length if n > 0)
    return lengths, re.compile(desc.national_number_pattern)


def _matches(nsn: str, desc: _Desc) -> bool:
    lengths, pattern = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


@lru_cache(maxsize=1024)
def _plan(region: str) -> _Plan | None:
    meta = PhoneMetadata.metadata_for_region(region, None)
    if meta is None:
        return None
    general = _desc(meta.general_desc)
    if general is None:
        return None
    by_length: dict[int, list[str]] = {}
    for attr in _PHONE_TYPES:
        desc = getattr(meta, attr, None)
        if desc is None or not desc.national_number_pattern:
            continue
        lengths = [n for n in desc.possible_length if n > 0] or list(general[0]) or range(2, 18)
        for n in lengths:
            by_length.setdefault(n, []).append(desc.national_number_pattern)
    typed = {n: re.compile("|".join(f"(?:{p})" for p in patterns))
             for n, patterns in by_length.items()}
    return _Plan(
        str(meta.country_code), general, typed,
        re.compile(meta.leading_digits) if meta.leading_digits else None,
        re.compile(meta.national_prefix_for_parsing) if meta.national_prefix_for_parsing else None,
        re.compile(meta.international_prefix) if meta.international_prefix else None,
        bool(meta.national_prefix_transform_rule),
    )


@lru_cache(maxsize=1024)
def _plans_for_code(cc: int) -> tuple[_Plan, ...]:
    regions = COUNTRY_CODE_TO_REGION_CODE.get(cc, ())
    plans = tuple(p for p in (_plan(r) for r in regions if r != "001") if p)
    return plans if len(plans) == len(regions) else ()


def _valid_in(plan: _Plan, nsn: str) -> bool:
    """phonenumbers' number type is not UNKNOWN: the general pattern and some type's match."""
    typed = plan.typed.get(len(nsn))
    return typed is not None and _matches(nsn, plan.general) and typed.fullmatch(nsn) is not None


def _valid_for_code(plans: tuple[_Plan, ...], nsn: str) -> bool:
    """phonenumbers.is_valid_number: the region of a shared calling code is the first whose
    leading digits match, or else whose patterns do."""
    if len(plans) == 1:
        return _valid_in(plans[0], nsn)
    for plan in plans:
        if plan.leading is not None:
            if plan.leading.match(nsn):
                return _valid_in(plan, nsn)
        elif _valid_in(plan, nsn):
            return True
    return False


def _fast_e164(text: str, region: str | None) -> str | None:
    """E.164 for the everyday shapes ("+49 151 2345 6789", "07911 123456", "(201) 555-0123")
    when the number is valid, None whenever phonenumbers' own parsing could decide otherwise."""
    if not text or not text.isascii():
        return None
    international = text[0] == "+"
    digits = _phone_digits(text[1:] if international else text)
    if not digits.isdigit() or len(digits) > 17:
        return None
    if international:
        if digits[0] == "0":
            return None
        for size in (1, 2, 3):
            plans = _plans_for_code(int(digits[:size]))
            if plans:
                break
        else:
            return None
        nsn = digits[size:]
        main = plans[0]
        if main.transforms or (main.prefix is not None and main.prefix.match(nsn)):
            return None
        return f"+{main.cc}{nsn}" if _valid_for_code(plans, nsn) else None
    plan = _plan(region) if region else None
    if plan is None or plan.transforms or digits.startswith(plan.cc):
        return None
    if plan.idd is not None and plan.idd.match(digits):
        return None
    nsn = digits
    if plan.prefix is not None:
        found = plan.prefix.match(digits)
        if found:
            if _matches(digits, plan.general):
                return None
            nsn = digits[found.end():]
    plans = _plans_for_code(int(plan.cc))
    return f"+{plan.cc}{nsn}" if plans and _valid_for_code(plans, nsn) else None


def _region(country: str | None) -> str | None:
    if not country:
        return None
    try:
        return standardise_country(country)
    except InvalidValue:
        return None


def _lacks_region(text: str, region: str | None) -> bool:
    """phonenumbers could not read `text` for want of a region: a national number (not written
    with +) and no region, or one without a numbering plan (Antarctica...)."""
    if region in SUPPORTED_REGIONS:
        return False
    try:
        parse(text, None)
    except NumberParseException as exc:
        start = _PHONE_START.search(text)  # where phonenumbers starts reading
        return (exc.error_type == NumberParseException.INVALID_COUNTRY_CODE
                and start is not None and start.group() not in "+\uff0b")
    return False


def _no_region_reason(country: str | None, region: str | None) -> str:
    if region is not None:
        return (f"a national number needs a country with phone numbers ({region} has none):"
                " write it with + and the country code")
    if country and country.strip():
        return f"a national number needs a valid country (got {country!r})"
    return "a national number needs a country: write it with + and the country code"


def standardise_phone(value: str, country: str | None) -> str:
    """E.164, reading national numbers in `country`. A long number that lost its "+" in a
    spreadsheet (447911123456) is read as international when it is not valid nationally. A
    national number with no usable country is invalid, and the reason says that is why."""
    text = value.strip()
    region = _region(country)
    fast = _fast_e164(text, region)
    if fast:
        return fast
    try:
        return normalize_phone(text, region)
    except InvalidValue:
        digits = _phone_digits(text)
        if digits.isdigit() and digits.isascii() and len(digits) >= 11 and digits[0] != "0":
            try:
                return normalize_phone("+" + digits, None)
            except InvalidValue:
                pass
        if _lacks_region(text, region):
            raise InvalidValue(_no_region_reason(country, region)) from None
        raise


# --- countries, languages, currencies ------------------------------------------------------

# Everyday English names CLDR does not list (it has "Czechia", "Türkiye", "Côte d’Ivoire"...).
_COUNTRY_ALIASES = {
    "uk": "GB", "greatbritain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northernireland": "GB", "unitedkingdomofgreatbritainandnorthernireland": "GB",
    "usa": "US", "unitedstatesofamerica": "US", "america": "US", "holland": "NL",
    "czechrepublic": "CZ", "turkey": "TR", "ivorycoast": "CI", "vatican": "VA",
    "vaticancity": "VA", "uae": "AE", "bosnia": "BA", "macedonia": "MK", "swaziland": "SZ",
    "burma": "MM", "capeverde": "CV", "easttimor": "TL", "korea": "KR", "republicofkorea": "KR",
    "russianfederation": "RU", "eire": "IE", "republicofireland": "IE", "brd": "DE",
}


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    codes = country_codes()
    entries = []
    for locale in _NAME_LOCALES:
        entries += [(name, code) for code, name in Locale(locale).territories.items()
                    if code in codes]
    table = _name_table(entries)
    for alias, code in _COUNTRY_ALIASES.items():
        table.setdefault(alias, code)
    return table


@lru_cache(maxsize=1)
def _country_aliases() -> dict[str, str]:
    """ISO 3166 alpha-3 and numeric codes, and retired codes (UK, DD...), from CLDR."""
    codes = country_codes()
    return {alias: targets[0] for alias, targets in get_global("territory_aliases").items()
            if len(targets) == 1 and targets[0] in codes}


@lru_cache(maxsize=4096)
def _country(text: str) -> str | None:
    codes = country_codes()
    compact = _KEY_JUNK.sub("", text).upper()
    if compact in codes:
        return compact
    if compact.isdigit() and len(compact) <= 3:
        compact = compact.zfill(3)
    if compact in _country_aliases():
        return _country_aliases()[compact]
    key = _key(text)
    names = _country_names()
    found = names.get(key)
    if found is None and key.startswith("the"):
        found = names.get(key[3:])
    return found


def standardise_country(value: str) -> str:
    """ISO 3166-1 alpha-2 from alpha-2, alpha-3 or numeric codes, or a name in any of the common
    European languages ("Deutschland", "España", "UK", "USA", "The Netherlands")."""
    found = _country(value.strip())
    if found is None:
        raise InvalidValue(f"{value!r} is not a known country")
    return found


_OFFICIAL = ("official", "de_facto_official")


@lru_cache(maxsize=1024)
def _territory_locale(country: str) -> Locale | None:
    """The locale of the country's main official language (or else most spoken one)."""
    languages = get_global("territory_languages").get(country, {})
    ranked = sorted(languages.items(),
                    key=lambda kv: (kv[1].get("official_status") not in _OFFICIAL,
                                    -(kv[1].get("population_percent") or 0)))
    for language, _ in ranked:
        try:
            return Locale.parse(f"{language}_{country}")
        except (ValueError, UnknownLocaleError):
            continue
    return None


@lru_cache(maxsize=1)
def _language_names() -> dict[str, str]:
    entries = []
    for locale in _NAME_LOCALES[:8]:
        entries += [(name, code) for code, name in Locale(locale).languages.items()
                    if "_" not in code and localedata.exists(code)]
    for code in _NAME_LOCALES:  # autonyms: "Deutsch", "français", "svenska"
        entries.append((Locale(code).languages.get(code, code), code))
    return _name_table(entries)


@lru_cache(maxsize=1024)
def _language(text: str) -> str | None:
    tag = text.replace("-", "_")
    if tag.replace("_", "").isalnum() and tag.isascii():
        try:
            locale = Locale.parse(tag)
        except (ValueError, UnknownLocaleError, TypeError):
            locale = None
        if locale is not None:
            explicit = len(tag.split("_"))
            parts = [locale.language]
            if locale.script and explicit > 1 and "_" + locale.script.lower() in tag.lower():
                parts.append(locale.script)
            if locale.territory and explicit > 1:
                parts.append(locale.territory)
            return "-".join(parts)
    return _language_names().get(_key(text))


def standardise_language(value: str) -> str:
    """A BCP 47 tag ("en", "en-GB", "de") from tags, ISO 639 codes or language names."""
    found = _language(value.strip())
    if found is None:
        raise InvalidValue(f"{value!r} is not a known language")
    return found


_CURRENCY_WORDS = {"dollar": "USD", "euro": "EUR", "pound": "GBP", "sterling": "GBP",
                   "poundsterling": "GBP", "yen": "JPY", "yuan": "CNY", "renminbi": "CNY",
                   "rupee": "INR", "rand": "ZAR", "real": "BRL", "won": "KRW", "ruble": "RUB",
                   "rouble": "RUB", "zloty": "PLN", "forint": "HUF", "franc": "CHF",
                   "krona": None, "krone": None, "peso": None, "lira": None, "dinar": None}


@lru_cache(maxsize=1)
def _currency_names() -> dict[str, str]:
    codes = currency_codes()
    entries = []
    for locale in _NAME_LOCALES:
        entries += [(name, code) for code, name in Locale(locale).currencies.items()
                    if code in codes]
    return _name_table(entries)


@lru_cache(maxsize=1)
def _currency_symbols() -> dict[str, str]:
    codes = currency_codes()
    return _name_table_exact([(symbol, code) for code, symbol in
                              Locale("en").currency_symbols.items()
                              if code in codes and symbol != code])


def _name_table_exact(entries: list[tuple[str, str]]) -> dict[str, str]:
    table: dict[str, str] = {}
    ambiguous = set()
    for name, code in entries:
        if table.setdefault(name, code) != code:
            ambiguous.add(name)
    return {k: v for k, v in table.items() if k not in ambiguous}


@lru_cache(maxsize=1024)
def _local_currency(country: str) -> tuple[str | None, str | None]:
    """The country's currency and how its own locale writes the symbol ("$" in Canada)."""
    current = get_territory_currencies(country, tender=True)
    if not current:
        return None, None
    code = current[0]
    locale = _territory_locale(country)
    return code, locale.currency_symbols.get(code) if locale else None


@lru_cache(maxsize=4096)
def _currency(text: str, country: str | None) -> str | None:
    compact = "".join(text.split())
    code, symbol = _local_currency(country) if country else (None, None)
    if code and compact in (symbol, code):
        return code
    if compact in _currency_symbols():
        return _currency_symbols()[compact]
    key = _key(text)
    names = _currency_names()
    if key in names or (key.endswith("s") and key[:-1] in names):  # "US dollars"
        return names.get(key) or names[key[:-1]]
    word = key[:-1] if key.endswith("s") and key[:-1] in _CURRENCY_WORDS else key
    if word in _CURRENCY_WORDS:
        if code and word in _key(Locale("en").currencies.get(code, "")):
            return code
        return _CURRENCY_WORDS[word]
    return None


def standardise_currency(value: str, *, country: str | None = None) -> str:
    """ISO 4217 from codes, symbols and names. Symbols and bare words shared by several
    currencies ("$", "kr", "dollar") are read in `country` (CA: CAD) or else the best-known
    one ($: USD); those with no best-known reading ("kr" outside Scandinavia) are invalid."""
    text = value.strip()
    if len(text) == 3 and text.isalpha():
        try:
            return normalize_currency(text)
        except InvalidValue:
            pass
    found = _currency(text, _region(country))
    if found is None:
        raise InvalidValue(f"{value!r} is not a known currency")
    return found


# --- amounts --------------------------------------------------------------------------------

_AMOUNT_NOISE = re.compile(r"[\s\u00a0\u202f'’]")  # spaces and apostrophes group digits
_AMOUNT = re.compile(r"([+-]?)([\d.,]+)")
# thousands ("1,234,567") or the Indian lakh and crore ("12,34,567")
_GROUPED = {sep: re.compile(rf"\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+"
                            rf"|\d{{1,2}}(?:{re.escape(sep)}\d{{2}})*{re.escape(sep)}\d{{3}}")
            for sep in ".,"}


def standardise_amount(value: Any, *, country: str | None = None) -> Decimal:
    """An amount of money from numbers and from text as people and spreadsheets write it:
    "1,234.56", "1.234,56", "1 234,56", "1'234.50", "12,50", "-3.5", "(12.00)" (negative),
    with a currency symbol or code around it ("€ 12,50", "12.50 EUR"; the currency itself is
    read from its own field). The last of "." and "," is the decimal mark when both appear;
    a single one followed by exactly three digits ("1,234", "1.234") is read as the country's
    locale writes numbers (a thousands separator in en_US, the decimal mark in de_DE), and
    without a country as 1234 and 1.234. Babel's parse_decimal is not used: it trusts the
    locale, and "12.50" from a German shop's system would become 1250."""
    if isinstance(value, bool):
        raise InvalidValue(f"{value!r} is not an amount")
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValue(f"{value!r} is not an amount")
        return Decimal(repr(value))
    text = _AMOUNT_NOISE.sub("", str(value))
    negative = text.startswith("(") and text.endswith(")")
    text = text.strip("()")
    number = _AMOUNT.search(text)
    rest = (text[:number.start()] + text[number.end():]) if number else text
    if number is None or (rest and not _currency_noise(rest)):
        raise InvalidValue(f"{value!r} is not an amount")
    sign, digits = number.groups()
    last = max(digits.rfind("."), digits.rfind(","))
    marks = {ch for ch in digits if ch in ".,"}
    if len(marks) == 2:  # "1.234,56": the last mark is the decimal one
        whole, fraction = digits[:last], digits[last + 1:]
        group = "." if digits[last] == "," else ","
        if not _GROUPED[group].fullmatch(whole) or not fraction.isdigit():
            raise InvalidValue(f"{value!r} is not an amount")
        digits = whole.replace(group, "") + "." + fraction
    elif marks:
        mark = marks.pop()
        after = len(digits) - last - 1
        if digits.count(mark) > 1 or (after == 3 and not _decimal_mark(mark, country)):
            if not _GROUPED[mark].fullmatch(digits):
                raise InvalidValue(f"{value!r} is not an amount")
            digits = digits.replace(mark, "")
        else:
            digits = digits.replace(mark, ".")
    try:
        amount = Decimal(sign + digits)
    except InvalidOperation:
        raise InvalidValue(f"{value!r} is not an amount") from None
    return -amount if negative else amount


def _currency_noise(text: str) -> bool:
    """Whether what surrounds the number is a currency symbol or code ("€", "US$", "EUR")."""
    return len(text) <= 4 and not any(ch.isdigit() for ch in text) and (
        text.isalpha() and text.isupper() or any(not ch.isalnum() for ch in text))


def _decimal_mark(mark: str, country: str | None) -> bool:
    """Whether `mark` is the decimal mark where the amount was written ("," in Germany)."""
    region = _region(country)
    locale = _territory_locale(region) if region else None
    if locale is None:
        return mark == "."
    return get_decimal_symbol(locale) == mark


# --- postcodes ------------------------------------------------------------------------------

# Postcodes made of digits only: how many, how they are written and what is valid. Digits a
# spreadsheet dropped from the front ("1067" for Dresden's 01067) are restored.
_DIGIT_POSTCODES: dict[str, tuple[int, str, str]] = {
    "DE": (5, "#####", r"\d{5}"), "FR": (5, "#####", r"\d{5}"),
    "ES": (5, "#####", r"(?:0[1-9]|[1-4]\d|5[0-2])\d{3}"), "IT": (5, "#####", r"\d{5}"),
    "FI": (5, "#####", r"\d{5}"), "MX": (5, "#####", r"\d{5}"), "TR": (5, "#####", r"\d{5}"),
    "SE": (5, "### ##", r"[1-9]\d{4}"), "CZ": (5, "### ##", r"[1-7]\d{4}"),
    "SK": (5, "### ##", r"[089]\d{4}"), "GR": (5, "### ##", r"[1-8]\d{4}"),
    "AT": (4, "####", r"[1-9]\d{3}"), "BE": (4, "####", r"[1-9]\d{3}"),
    "CH": (4, "####", r"[1-9]\d{3}"), "DK": (4, "####", r"[1-9]\d{3}"),
    "LU": (4, "####", r"\d{4}"), "NO": (4, "####", r"\d{4}"), "HU": (4, "####", r"[1-9]\d{3}"),
    "AU": (4, "####", r"\d{4}"), "NZ": (4, "####", r"\d{4}"),
    "PL": (5, "##-###", r"\d{5}"), "PT": (7, "####-###", r"[1-9]\d{6}"),
    "BR": (8, "#####-###", r"\d{8}"), "JP": (7, "###-####", r"\d{7}"),
    "IN": (6, "######", r"[1-9]\d{5}"), "RU": (6, "######", r"[1-9]\d{5}"),
    "CN": (6, "######", r"\d{6}"),
}
_DIGIT_PATTERNS = {c: re.compile(p) for c, (_, _, p) in _DIGIT_POSTCODES.items()}
_POSTCODE_PREFIX = re.compile(r"^[A-Z]{1,3}-(?=\d)")
_GB_POSTCODE = re.compile(r"([A-Z]{1,2}\d[A-Z\d]?|GIR) ?(\d[A-Z]{2})")
_NL_POSTCODE = re.compile(r"([1-9]\d{3}) ?([A-Z]{2})")
_CA_POSTCODE = re.compile(r"([ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]) ?(\d[ABCEGHJ-NPRSTV-Z]\d)")
_IE_POSTCODE = re.compile(r"([AC-FHKNPRTV-Y]\d{2}|D6W) ?([0-9AC-FHKNPRTV-Y]{4})")
_US_POSTCODE = re.compile(r"(\d{3,5})(?:[- ]?(\d{4}))?")
_ANY_POSTCODE = re.compile(r"[A-Z0-9](?:[A-Z0-9 -]{0,12}[A-Z0-9])?")
_LETTER_POSTCODES = {"GB": _GB_POSTCODE, "NL": _NL_POSTCODE, "CA": _CA_POSTCODE,
                     "IE": _IE_POSTCODE}


@lru_cache(maxsize=65536)
def _postcode(text: str, country: str | None) -> str | None:
    code = " ".join(text.upper().split())
    if code.endswith(".0") and code[:-2].isdigit():  # a spreadsheet number
        code = code[:-2]
    if country in _LETTER_POSTCODES:
        found = _LETTER_POSTCODES[country].fullmatch(code)
        if found is None:
            found = _LETTER_POSTCODES[country].fullmatch(code.replace(" ", ""))
        return f"{found.group(1)} {found.group(2)}" if found else None
    if country == "US":
        found = _US_POSTCODE.fullmatch(_POSTCODE_PREFIX.sub("", code))
        if found is None:
            return None
        zip5 = found.group(1).zfill(5)
        return f"{zip5}-{found.group(2)}" if found.group(2) else zip5
    if country in _DIGIT_POSTCODES:
        size, layout, _ = _DIGIT_POSTCODES[country]
        digits = _POSTCODE_PREFIX.sub("", code).replace(" ", "").replace("-", "")
        if not digits.isdigit() or not digits.isascii():
            return None
        if size - 2 <= len(digits) < size:
            digits = digits.zfill(size)
        if len(digits) != size or not _DIGIT_PATTERNS[country].fullmatch(digits):
            return None
        out = iter(digits)
        return "".join(next(out) if ch == "#" else ch for ch in layout)
    return code if _ANY_POSTCODE.fullmatch(code) else None


def standardise_postcode(value: str, country: str | None) -> str:
    """The country's canonical writing ("SW1A 1AA", "1234 AB", "K1A 0B1", "02134-1234",
    "01067", "142 38"), validated where its format is known; elsewhere upper-cased."""
    text = value.strip()
    region = _region(country)
    found = _postcode(text, region)
    if found is None:
        where = f"a {region} postcode" if region else "a postcode"
        raise InvalidValue(f"{value!r} is not {where}")
    return found


# --- dates ---------------------------------------------------------------------------------

DATE_ORDERS = ("DMY", "MDY", "YMD")
_EXCEL_EPOCH = date(1899, 12, 30)
_ISO_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_NUMERIC_DATE = re.compile(r"(\d{1,2})([./\- ])(\d{1,2})\2(\d{4}|\d{2})")
_SHORT_YMD = re.compile(r"(\d{2})([./\-])(\d{1,2})\2(\d{1,2})")
_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")
_TIME_SUFFIX = re.compile(
    r"(?:[ t]+|(?<=\d)t)\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[ap]\.?m\.?)?"
    r"\s*(?:z|utc|gmt|[+-]\d{2}:?\d{2})?$"
)
_DATE_TOKEN = re.compile(r"\d+|[^\W\d_]+")
_DATE_NOISE = frozenset({"st", "nd", "rd", "th", "de", "del", "of", "the", "er", "e", "o", "den",
                         "der", "le", "el", "di", "a", "am", "um", "en"})


@lru_cache(maxsize=1)
def _month_words() -> tuple[dict[str, int], frozenset[str]]:
    months: dict[str, int] = {"sept": 9}
    days: set[str] = set()
    for locale in _NAME_LOCALES[:10]:
        data = Locale(locale)
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                for number, name in data.months[context][width].items():
                    months.setdefault(fold(name).rstrip("."), number)
                for name in data.days[context][width].values():
                    days.add(fold(name).rstrip("."))
    return months, frozenset(days - months.keys())


@lru_cache(maxsize=1024)
def _country_date_order(country: str | None) -> str:
    """MDY where the country's own short date pattern puts the month first (US, PH...)."""
    locale = _territory_locale(country) if country else None
    if locale is None:
        return "DMY"
    pattern = locale.date_formats["short"].pattern
    month, day = pattern.find("M"), pattern.find("d")
    if pattern.lstrip("'").startswith("y") or month < 0 or day < 0:
        return "DMY"
    return "MDY" if month < day else "DMY"


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        year += 2000 if 2000 + year <= date.today().year else 1900
    return year


def _latest(year: str, born_by: date | None) -> date | None:
    """`born_by` for a two-digit year: the only kind whose century is a guess."""
    return born_by if len(year) == 2 else None


def _make(year: int, month: int, day: int, latest: date | None = None) -> date | str:
    """The date; one after `latest` (a date of birth's guessed century) a century earlier."""
    try:
        made = date(year, month, day)
    except ValueError:
        return f"{year:04d}-{month:02d}-{day:02d} is not a calendar date"
    return _make(year - 100, month, day) if latest is not None and made > latest else made


def _day_month(first: int, second: int, year: int, month_first: bool,
               latest: date | None = None) -> date | str:
    day, month = (second, first) if month_first else (first, second)
    if month > 12 >= day:
        day, month = month, day
    return _make(year, month, day, latest)


def _from_serial(serial: float) -> date | str:
    if not math.isfinite(serial) or not 1 <= serial < 2958466 or int(serial) == 60:
        return f"{serial!r} is not a spreadsheet date number"
    days = int(serial)
    # Excel counts a 29 February 1900 that never was: serials before it are one day earlier
    return (_EXCEL_EPOCH if days > 60 else _EXCEL_EPOCH + timedelta(days=1)) + timedelta(days)


@lru_cache(maxsize=65536)
def _parse_date(text: str, order: str, explicit: bool,
                born_by: date | None = None) -> date | str:
    """The date, or why the text is not one (cached either way: messy values repeat). With
    `born_by`, a date of birth read on that day: nobody is born after it, so a two-digit year
    is the latest that does not put the date later ("31/12/26" -> 1926 on 2026-11-25)."""
    s = text.casefold()
    if ":" in s:
        s = _TIME_SUFFIX.sub("", s).strip()
    month_first = order == "MDY"
    found = _ISO_DATE.fullmatch(s)
    if found:
        return _make(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    if s.isdigit() and s.isascii():
        if len(s) == 8:
            ymd = _make(int(s[:4]), int(s[4:6]), int(s[6:]))
            if isinstance(ymd, date) and 1800 <= ymd.year <= 2200:
                return ymd
            return _day_month(int(s[:2]), int(s[2:4]), int(s[4:]), month_first)
        if len(s) == 5:
            return _from_serial(int(s))
        return f"{text!r} is not a date"
    if order == "YMD":
        found = _SHORT_YMD.fullmatch(s)
        if found:
            return _make(_year(found.group(1)), int(found.group(3)), int(found.group(4)),
                         born_by)
    found = _NUMERIC_DATE.fullmatch(s)
    if found:
        first, sep, second, year = found.groups()
        if sep == "." and not explicit:
            month_first = False  # dotted dates are day-first wherever they are written
        return _day_month(int(first), int(second), _year(year), month_first,
                          _latest(year, born_by))
    if _SERIAL.fullmatch(s):
        return _from_serial(float(s))
    months, weekdays = _month_words()
    month = None
    numbers = []
    for token in _DATE_TOKEN.findall(s):
        if token.isdigit():
            numbers.append(token)
            continue
        word = token if token.isascii() else fold(token)
        if word in months:
            if month is not None and months[word] != month:
                return f"{text!r} names two months"
            month = months[word]
        elif word not in _DATE_NOISE and word not in weekdays:
            return f"{text!r} is not a date"
    if month is None or len(numbers) != 2:
        return f"{text!r} is not a date"
    a, b = numbers
    if len(a) == 4 or (len(a) <= 2 and int(a) > 31 and len(b) <= 2):
        day, year = b, a
    else:
        day, year = a, b
    return _make(_year(year), month, int(day), _latest(year, born_by))


def standardise_date(value: Any, *, country: str | None = None,
                     date_order: str | None = None) -> date:
    """A date from ISO text, dd/mm/yyyy or mm/dd/yyyy (an explicit `date_order` wins, else the
    country's convention: month-first in the US, the Philippines...; values only one order can
    read are read that way), "3 Apr 1985", "April 3, 1985", "19850403", "03.04.1985", month
    names in the major European languages, date and datetime objects, and spreadsheet serial
    numbers."""
    return _read_date(value, country, date_order, None)


def _read_date(value: Any, country: str | None, date_order: str | None,
               born_by: date | None) -> date:
    """standardise_date; with `born_by`, two-digit years of a date of birth read on that day."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        raise InvalidValue(f"{value!r} is not a date")
    if isinstance(value, numbers.Real):
        if float(value).is_integer():
            number = int(value)
            if 10_000_000 <= number <= 99_991_231:
                return _read_date(str(number), country, date_order, born_by)
        result = _from_serial(float(value))
    elif isinstance(value, str):
        if date_order is not None:
            order = date_order.upper()
            if order not in DATE_ORDERS:
                raise InvalidValue(f"date order {date_order!r} is not one of DMY, MDY, YMD")
            result = _parse_date(value.strip(), order, True, born_by)
        else:
            result = _parse_date(value.strip(), _country_date_order(_region(country)), False,
                                 born_by)
    else:
        raise InvalidValue(f"{value!r} is not a date")
    if isinstance(result, str):
        raise InvalidValue(result)
    return result


def standardise_birth_date(value: Any, *, country: str | None = None,
                           date_order: str | None = None) -> date:
    """A date of birth: a date that is not in the future nor before 1900. A two-digit year is
    the latest that does not put it in the future ("1/1/05" -> 2005, "1/1/99" -> 1999)."""
    return _plausible_birth(_read_date(value, country, date_order, date.today()))


def _plausible_birth(born: date) -> date:
    if born.year < 1900:
        raise InvalidValue(f"{born.isoformat()} is before 1900: not a plausible date of birth")
    if born > date.today():  # not memoised with the date: today moves on
        raise InvalidValue(f"{born.isoformat()} is in the future: not a date of birth")
    return born


# --- addresses and other text ----------------------------------------------------------------

# Lower-case inside a shouted street or place name ("RUE DE LA PAIX" -> "Rue de la Paix").
_ADDRESS_SMALL = frozenset({"de", "la", "le", "les", "du", "des", "del", "della", "di", "da",
                            "dos", "das", "van", "von", "der", "den", "het", "op", "aan", "of",
                            "the", "and", "et", "y", "e", "am", "an", "im", "in", "zum", "zur",
                            "auf", "bei", "sur", "sous", "en", "lès", "aux", "au"})
_ADDRESS_UPPER = frozenset({"PO", "P.O.", "BP", "CP", "NE", "NW", "SE", "SW", "N", "S", "E", "W",
                            "II", "III", "IV", "USA", "UK"})
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th|er|ème|bis|ter)", re.IGNORECASE)
_COMMA_SPACING = re.compile(r"\s*,\s*")


_DIGIT = re.compile(r"\d")


@lru_cache(maxsize=65536)
def _address_word(word: str, first: bool) -> str:
    if _DIGIT.search(word):
        return word.lower() if _ORDINAL.fullmatch(word) else word.upper()
    upper, lower = word.upper(), word.lower()
    if upper in _ADDRESS_UPPER and (word == upper or len(word) > 2):
        return upper
    if (not first and lower in _ADDRESS_SMALL) or lower == "c/o":
        return lower
    return _case_word(word, _ADDRESS_SMALL)


def _smart_case(text: str) -> str:
    """Title case for text typed all in capitals or all in lower case; anything else already
    carries someone's deliberate casing and is kept."""
    if text.upper() != text and text.lower() != text:
        return text
    words = text.split(" ")
    return " ".join([_address_word(w, i == 0) for i, w in enumerate(words)])


def _clean_line(value: str) -> str:
    text = _clean(value)
    if "," in text:
        text = _COMMA_SPACING.sub(", ", text).strip(", ")
    if not any(ch.isalnum() for ch in text):
        raise InvalidValue(f"{value!r} has no letters or digits")
    return text


@lru_cache(maxsize=65536)
def standardise_address_line(value: str) -> str:
    """Whitespace, comma spacing and the case of shouted or all-lower-case lines
    ("12B BAKER STREET" -> "12B Baker Street"); house numbers and their letters are kept."""
    return _settled(_smart_case, _clean_line(value))


@lru_cache(maxsize=65536)
def standardise_region(value: str) -> str:
    """A state or province: a code is upper-case ("nc" -> "NC", "NSW" stays), a name is cased
    like an address line ("north carolina" -> "North Carolina"). Two letters are always a code;
    three only when written in capitals, as names of three letters exist ("Ain", "Var").
    Codes (ISO 3166-2's and the postal ones) are in ASCII letters."""
    written = _clean_line(value)
    text = _settled(_smart_case, written)  # cased first: "ß" becomes "Ss", a code
    if text.isascii() and text.isalpha() and (
            len(text) == 2 or (len(text) == 3 and written.isupper())):
        return text.upper()
    return text


_REGION_CODE = re.compile(r"[A-Z]{2,3}")
_SPLITTABLE = frozenset({*_LETTER_POSTCODES, *_DIGIT_POSTCODES, "US"})


def _split_address(text: str, country: str | None) -> dict[str, str]:
    """"12 Baker Street, NW1 6XE London" -> line 1, postcode and city, when the country's
    postcode is found at the start or end of the last comma-separated part."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) < 2 or country not in _SPLITTABLE:
        return {}
    words = parts[-1].split()
    line1 = ", ".join(parts[:-1])

    def postcode(candidate: list[str]) -> str | None:
        text = " ".join(candidate)
        found = _postcode(text, country)
        # a house number is not a postcode that lost its leading zeros
        digits = sum(ch.isdigit() for ch in text)
        return found if found and digits and digits == sum(ch.isdigit() for ch in found) else None

    whole = postcode(words)
    if whole and len(parts) >= 3:
        return {"address_line1": ", ".join(parts[:-2]), "postcode": whole, "city": parts[-2]}
    for size in (2, 1):
        if len(words) <= size:
            continue
        head = postcode(words[:size])
        if head:
            return {"address_line1": line1, "postcode": head, "city": " ".join(words[size:])}
        tail = postcode(words[-size:])
        if tail:
            rest = " ".join(words[:-size])
            if _REGION_CODE.fullmatch(rest) and len(parts) >= 3:
                return {"address_line1": ", ".join(parts[:-2]), "postcode": tail,
                        "city": parts[-2], "region": rest}
            return {"address_line1": line1, "postcode": tail, "city": rest}
    return {}


_GENDERS = {
    "female": ("f", "female", "woman", "w", "frau", "weiblich", "femme", "feminin", "mujer",
               "femenino", "femenina", "femmina", "donna", "vrouw", "v", "kvinna", "girl"),
    "male": ("m", "male", "man", "mann", "mannlich", "homme", "masculin", "h", "hombre",
             "masculino", "maschio", "uomo", "boy", "herr"),
    "non_binary": ("x", "d", "divers", "diverse", "nonbinary", "nb", "enby", "genderqueer"),
    "other": ("other", "andere", "autre", "otro", "altro"),
}
_GENDER_KEYS = {key: gender for gender, keys in _GENDERS.items() for key in keys}


def standardise_gender(value: str) -> str:
    """female, male, non_binary or other, from the words and letters silos use."""
    found = _GENDER_KEYS.get(_key(value))
    if found is None:
        raise InvalidValue(f"{value!r} is not a recognised gender")
    return found


_ID_PUNCTUATION = str.maketrans("", "", " -./")


def _standardise_national_id(value: str) -> str:
    code = value.upper().translate(_ID_PUNCTUATION)
    if not code.isalnum():
        raise InvalidValue(f"{value!r} is not an identification number")
    return code


def _standardise_text(value: str) -> str:
    text = _clean(value)
    if not any(ch.isalnum() for ch in text):
        raise InvalidValue(f"{value!r} has no letters or digits")
    return text


# --- whole profiles ----------------------------------------------------------------------------


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _currency_in(text: str, region: str | None) -> str:
    return standardise_currency(text, country=region)


# Fields standardised from their text alone, and those read in the record's country.
_TEXT_FIELDS: dict[str, Callable[[str], Any]] = {
    "title": _standardise_title,
    "last_name": standardise_name,
    "gender": standardise_gender,
    "email": standardise_email,
    "address_line1": standardise_address_line,
    "address_line2": standardise_address_line,
    "city": standardise_address_line,
    "region": standardise_region,
    "national_id": _standardise_national_id,
    "company": _standardise_text,
    "job_title": _standardise_text,
    "language": standardise_language,
}
_REGIONAL_FIELDS: dict[str, Callable[[str, str | None], Any]] = {
    "phone": standardise_phone,
    "postcode": standardise_postcode,
    "currency": _currency_in,
}


# Fields whose values repeat from record to record (places, surnames, titles, postcodes) and
# whose standardising is a pure function of the text (and the region): a record's text is
# looked up with its outcome, value or flag alike, instead of going through the standardiser's
# layers again. E-mails, phones and ids are nearly all distinct: not kept.
_MEMO_TEXT = frozenset({"title", "last_name", "gender", "address_line1", "address_line2", "city",
                        "region", "company", "job_title", "language"})
_MEMO_REGIONAL = frozenset({"postcode", "currency"})
_MEMOISED = {**dict.fromkeys(_MEMO_TEXT, False), **dict.fromkeys(_MEMO_REGIONAL, True)}
_MEMO_SIZE = 1 << 16


@lru_cache(maxsize=_MEMO_SIZE)
def _text_outcome(key: str, text: str, region: str | None) -> tuple[bool, Any]:
    """(True, the value) or (False, the flag) of one text or regional field."""
    try:
        if key in _TEXT_FIELDS:
            return True, _TEXT_FIELDS[key](text)
        return True, _REGIONAL_FIELDS[key](text, region)
    except InvalidValue as exc:
        return False, str(exc) or f"not a valid {key}"


@lru_cache(maxsize=_MEMO_SIZE)
def _date_outcome(text: str, region: str | None, date_order: str | None,
                  born_by: date | None = None) -> tuple[bool, Any]:
    """(True, the date) or (False, the flag) of a written date, before the checks of a date of
    birth; with `born_by` (today, part of the key as it moves on) read as one born by then."""
    try:
        return True, _read_date(text, region, date_order, born_by)
    except InvalidValue as exc:
        return False, str(exc) or "not a valid date_of_birth"


def standardise_profile(raw: Mapping[str, Any], *, default_country: str | None = None,
                        date_order: str | None = None) -> Standardised:
    """Standardise one record whose keys are already canonical field names.

    Empty values are absent. The record's country is standardised first and, or else
    `default_country` (the source's), is the region phones, postcodes and ambiguous dates are
    read in; `default_country` is not written into the values. A full name fills first and last
    name when those are missing, and titles found in names fill `title`. Keys that are not
    profile fields (custom "cf.*" fields...) pass through trimmed. A value that cannot be
    standardised goes to `flags` with the reason, never into `values`. An unknown
    `default_country` or `date_order` is a configuration error and raises InvalidValue.
    """
    values: dict[str, Any] = {}
    flags: dict[str, str] = {}
    data: dict[str, Any] = {}
    for key, value in raw.items():
        if value.__class__ is str or isinstance(value, str):
            value = value.strip()
            if not value:
                continue
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if key in _PROFILE_SET:
            data[key] = value
        else:
            values[key] = value

    region = None
    if "country" in data:
        try:
            region = values["country"] = standardise_country(_as_text(data["country"]))
        except InvalidValue as exc:
            flags["country"] = str(exc)
    if region is None and default_country:
        region = standardise_country(default_country)
    # regional values are read in the region; with none, the country as written names why not
    where = region or (_as_text(data["country"]) if "country" in flags else None)

    titles: list[tuple[str, str]] = []  # (the field it was found in, title)
    for key, value in data.items():
        if value.__class__ is str:
            regional = _MEMOISED.get(key)  # None: not memoised
            if regional is not None:
                ok, out = _text_outcome(key, value, region if regional else None)
                if ok:
                    values[key] = out
                else:
                    flags[key] = out
                continue
            if key == "date_of_birth":
                ok, out = _date_outcome(value, region, date_order, date.today())
                if ok:
                    try:
                        values[key] = _plausible_birth(out)
                    except InvalidValue as exc:
                        flags[key] = str(exc)
                else:
                    flags[key] = out
                continue
        try:
            if key in _TEXT_FIELDS:
                values[key] = _TEXT_FIELDS[key](_as_text(value))
            elif key in _REGIONAL_FIELDS:
                values[key] = _REGIONAL_FIELDS[key](_as_text(value), where)
            elif key == "date_of_birth":
                values[key] = standardise_birth_date(value, country=region, date_order=date_order)
            elif key == "first_name":
                title, name = split_title(_as_text(value))
                if title:
                    titles.append((key, title))
                if name:
                    values[key] = standardise_name(name)
            elif key == "address":
                line = values[key] = standardise_address_line(_as_text(value))
                # split into line 1, postcode and city where the country's postcode shows
                # where; else the whole address is line 1, so it is matched and kept
                for part, text in (_split_address(line, region)
                                   or {"address_line1": line[:_MAX_LENGTH["address_line1"]]}
                                   ).items():
                    if part not in data:
                        values[part] = text
        except InvalidValue as exc:
            flags[key] = str(exc) or f"not a valid {key}"

    if "full_name" in data:
        try:
            title, first, last = _split_name(_as_text(data["full_name"]))
        except InvalidValue as exc:
            flags["full_name"] = str(exc)
        else:
            if title:
                titles.append(("full_name", title))
            full = " ".join(p for p in (first, last) if p)
            if full:
                values["full_name"] = full
            for key, part in (("first_name", first), ("last_name", last)):
                if part and key not in values and key not in flags:
                    values[key] = part
    for key, title in titles:
        if "title" not in values and "title" not in flags:
            values["title"] = title
        elif key not in values and key not in flags:  # a name that was only a title
            values[key] = title

    for key, value in values.items():
        limit = _MAX_LENGTH.get(key)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            flags[key] = f"longer than {limit} characters"
    for key in flags:
        values.pop(key, None)
    return Standardised(values, flags)
