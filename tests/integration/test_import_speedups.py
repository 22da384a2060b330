"""The import's shortcuts decide exactly as the slow paths they skip.

The e-mail fast path for internationalised local parts is compared with email-validator on every
code point and on generated addresses; the memoised standardisers with their uncached results;
the import's pause of the cyclic collector is checked to end with each batch.
"""

from __future__ import annotations

import gc

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.core.contact import InvalidValue, normalize_email
from accord.core.contact import fast_email as _fast_email
from accord.core.memory import no_cycle_collection
from accord.integration import ingest
from accord.integration import standardise as std
from accord.integration.standardise import standardise_email

PROPS = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _library(address: str) -> str | None:
    """email-validator itself: `normalize_email` takes the fast path first."""
    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


# --- e-mail addresses with accented local parts -------------------------------------------


@pytest.mark.parametrize("address", [
    "chloé.martin@example.com", "Chloé.Martin@Example.COM", "zoë+news@mail.example.co.uk",
    "ΣΊΣΥΦΟΣ@example.com", "ΑΣ@EXAMPLE.COM", "οδυσσεύς@example.gr", "ñandú_1@example.es",
    "đoàn.văn@example.vn", "пример@example.ru", "例え@example.jp", "İlkay@example.com",
    "ǅemal@example.com", "ẞig@example.de", "ÆØÅ-x@example.no", "ŉ@example.com",
])
def test_everyday_accented_addresses_take_the_fast_path(address: str) -> None:
    fast = _fast_email(address)
    assert fast is not None
    assert fast == _library(address) == normalize_email(address)
    assert standardise_email(f"  mailto:{address} ") == fast


@pytest.mark.parametrize("address", [
    "e\u0301cole@example.com",  # not NFC: email-validator normalises it
    "\u0301a@example.com",  # a combining mark first
    "a\u200bb@example.com",  # zero-width space (format character)
    "a\u00a0b@example.com",  # no-break space
    "ab\u00ad@example.com",  # soft hyphen
    "\u1100\u1161@example.com",  # Hangul jamo that NFC composes
    "٣@example.com",  # a digit of another script: valid, but left to the library
    "Ⅻ@example.com",  # a letter number
    "ä@bücher.de", "ä@xn--bcher-kva.de",  # internationalised domains
    "ä@example.local", "ä@example.invalid", "ä@localhost",  # special-use or dotless
    "ä..b@example.com", ".ä@example.com", "ä.@example.com", "\"ä\"@example.com",
    "ä" * 65 + "@example.com",  # local part over 64 characters
    "ä" * 60 + "@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 40 + ".com",  # over 254 bytes
    "ä@ex--ample.com", "ä@-example.com", "ä@example.c0m", "ä@@example.com", "ä",
    "a\ud800b@example.com",  # a lone surrogate
])
def test_the_fast_path_leaves_the_rest_to_email_validator(address: str) -> None:
    assert _fast_email(address) is None


def test_every_code_point_agrees_with_email_validator() -> None:
    """Each code point from U+0080 to U+2FFFF in a local part: wherever the fast path answers,
    email-validator accepts the address and normalises it to the same text."""
    checked = 0

    def check(address: str) -> bool:
        nonlocal checked
        fast = _fast_email(address)
        if fast is None:
            return False
        assert _library(address) == fast, address
        checked += 1
        return True

    for start in range(0x80, 0x30000, 16):
        chunk = "".join(chr(cp) for cp in range(start, start + 16))
        if not check(f"a{chunk}b@Example.com"):  # else each character on its own
            for ch in chunk:
                check(f"{ch}.a{ch}@example.COM")
    assert checked > 5000  # the letters of many scripts went through the fast path


_LOCAL_CHARS = st.sampled_from(
    list("abcXYZ019_+-.") + list("!#$%&'*/=?^`{|}~ \"@<>\\,;:()[]\t")
    + list("éÉëçñßøÆŉİıǅǈſKΣσςΑΩπДжЯ例えḁ") + ["\u0301", "\u0308", "\u200b", "\u00ad", "\u00a0",
                                           "\u1100", "\u1161", "٣", "Ⅻ", "\ue000", "\U0001d49c",
                                           "\ufb01", "\u2028", "\U000e0041", "\u0378"])
_DOMAINS = st.sampled_from(["example.com", "EXAMPLE.COM", "Example.co.uk", "bücher.de",
                            "xn--bcher-kva.de", "example", "ex--ample.com", "example.local",
                            "a.b", "example.com.", "-ex.com", "ex_ample.com", "[127.0.0.1]",
                            "ｅｘａｍｐｌｅ.com", "example.c0m", "a" * 63 + ".com",
                            "a" * 64 + ".com", "x.y.z.example.museum"])


@PROPS
@given(st.lists(_LOCAL_CHARS, min_size=0, max_size=70).map("".join), _DOMAINS)
def test_generated_addresses_agree_with_email_validator(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    fast = _fast_email(address)
    if fast is not None:
        assert _library(address) == fast


@PROPS
@given(st.text(min_size=1, max_size=40), _DOMAINS)
def test_arbitrary_text_agrees_with_email_validator(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    fast = _fast_email(address)
    if fast is not None:
        assert _library(address) == fast


# --- the cyclic collector ------------------------------------------------------------------


def test_collection_pauses_and_resumes() -> None:
    assert gc.isenabled()
    with no_cycle_collection():
        assert not gc.isenabled()
        with no_cycle_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause does not end the outer one
    assert gc.isenabled()
    with pytest.raises(RuntimeError), no_cycle_collection():
        raise RuntimeError
    assert gc.isenabled()


def test_a_pause_keeps_collection_off_when_it_was_off() -> None:
    gc.disable()
    try:
        with no_cycle_collection():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- memoised field outcomes ------------------------------------------------------------------

_FIELD_VALUES = {
    "title": ["Dr.", "mr", "Prof Dr", "!!", "Sig.ra", "Herr"],
    "last_name": ["MÜLLER", "o'neill", "VAN ENSCHOT", "12", "de la Cruz", "ŉ", "x" * 120],
    "gender": ["f", "Frau", "?", "divers"],
    "address_line1": ["12B BAKER STREET", "rue de la paix", "!!!", "  High   Street ,  1"],
    "address_line2": ["FLAT 2", "c/o acme"],
    "city": ["LONDON", "st. albans", "Łódź", "!!!"],
    "region": ["BAYERN", "ny"],
    "company": ["ACME GmbH", "!!"],
    "job_title": ["CEO", "x" * 130],
    "language": ["en-GB", "Deutsch", "xx", "zh-Hant-TW"],
    "postcode": ["sw1a1aa", "1067", "XXXX", "1012ab", "D-10115", "02134-1234", "10115.0"],
    "currency": ["€", "$", "kr", "pound sterling", "xyz"],
}


def _direct(key: str, text: str, region: str | None) -> tuple[bool, object]:
    """What the standardiser itself says, without the memo."""
    try:
        if key in std._TEXT_FIELDS:
            return True, std._TEXT_FIELDS[key](text)
        return True, std._REGIONAL_FIELDS[key](text, region)
    except InvalidValue as exc:
        return False, str(exc) or f"not a valid {key}"


@pytest.mark.parametrize("region", [None, "GB", "DE", "NL", "US", "SE", "CA"])
def test_memoised_fields_give_what_their_standardisers_give(region: str | None) -> None:
    assert set(_FIELD_VALUES) == std._MEMO_TEXT | std._MEMO_REGIONAL
    for key, texts in _FIELD_VALUES.items():
        where = region if key in std._MEMO_REGIONAL else None
        for text in texts:
            for _ in range(2):  # the first call fills the memo, the second reads it
                assert std._text_outcome(key, text, where) == _direct(key, text, where)


@pytest.mark.parametrize("order", [None, "DMY", "MDY", "YMD", "XYZ"])
def test_memoised_dates_give_what_the_date_standardiser_gives(order: str | None) -> None:
    for text in ["12/10/1947", "10/12/1947", "3 Apr 1985", "31/02/1990", "2099-01-01",
                 "1850-01-01", "32874", "not a date", "01/02/1990", "1.5.1970"]:
        for region in (None, "GB", "US"):
            try:
                expected: tuple[bool, object] = (
                    True, std.standardise_date(text, country=region, date_order=order))
            except InvalidValue as exc:
                expected = (False, str(exc))
            assert std._date_outcome(text, region, order) == expected
            # and the date of birth checks still run on every call
            try:
                born: object = std.standardise_birth_date(text, country=region, date_order=order)
            except InvalidValue as exc:
                born = str(exc)
            profile = std.standardise_profile({"date_of_birth": text}, default_country=region,
                                              date_order=order)
            assert profile.values.get("date_of_birth", profile.flags.get("date_of_birth")) == born


def test_a_profile_standardises_the_same_with_the_memo_full_or_empty() -> None:
    records = [{"first_name": "Anna", "last_name": last, "city": city, "postcode": postcode,
                "country": country, "date_of_birth": born, "currency": "$", "title": "dr",
                "cf.tier": "gold"}
               for last, city, postcode, country, born in [
                   ("MÜLLER", "BERLIN", "1067", "DE", "01.02.1990"),
                   ("o'neill", "london", "sw1a1aa", "UK", "12/10/1947"),
                   ("12", "!!!", "XXXX", "Atlantis", "31/02/1990"),
                   ("Smith", "New York", "2134", "USA", "01/02/1990")]]
    first = [std.standardise_profile(r, default_country="GB") for r in records]
    again = [std.standardise_profile(r, default_country="GB") for r in records]
    std._text_outcome.cache_clear()
    std._date_outcome.cache_clear()
    fresh = [std.standardise_profile(r, default_country="GB") for r in records]
    for a, b, c in zip(first, again, fresh, strict=True):
        assert (a.values, a.flags) == (b.values, b.flags) == (c.values, c.flags)
        assert list(a.flags) == list(c.flags) and list(a.values) == list(c.values)  # order too
    assert first[1].values["postcode"] == "SW1A 1AA" and first[0].values["postcode"] == "01067"
    assert set(first[2].flags) == {"last_name", "city", "postcode", "country", "date_of_birth"}


# --- the prepared row of a profile ------------------------------------------------------------


def test_a_value_longer_than_its_column_is_flagged_in_column_order(monkeypatch) -> None:
    fields = {"first_name": "Anna", "last_name": "Berg", "city": "Stockholm",
              "job_title": "Engineer", "email": "anna@example.com", "cf.tier": "gold"}
    row, flags = ingest._profile_row(dict(fields), "SE", None)
    assert flags == {}
    assert row["extra"] == {"cf.tier": "gold"} and row["flags"] == "{}"  # stored as "{}"
    # columns narrower than the standardiser's limits: _profile_row flags them itself
    monkeypatch.setitem(ingest._COLUMN_LIMITS, "job_title", 3)
    monkeypatch.setitem(ingest._COLUMN_LIMITS, "city", 4)
    monkeypatch.setattr(ingest, "_NARROWER", (("city", 4), ("job_title", 3)))
    row, flags = ingest._profile_row(dict(fields), "SE", None)
    assert list(flags) == ["city", "job_title"]  # the order of the columns, not of the fields
    assert flags["city"] == "longer than 4 characters"
    assert row["city"] is None and row["job_title"] is None and row["first_name"] == "Anna"
    assert row["flags"] is flags and row["extra"] == {"cf.tier": "gold"}
    assert row["last_name_key"] == "berg" and row["country"] == "SE"


def test_a_profile_row_names_every_column_and_falls_back_to_the_country() -> None:
    row, flags = ingest._profile_row({"email": "a@example.com", "phone": "12"}, "GB", None)
    assert list(row)[:len(ingest.PROFILE_COLUMNS)] == list(ingest.PROFILE_COLUMNS)
    assert row["country"] == "GB" and row["phone"] is None and "phone" in flags
    with pytest.raises(ingest.Rejected) as refused:
        ingest._profile_row({"city": "Leeds", "phone": "12"}, "GB", None)
    assert refused.value.field == "phone" and "no usable name" in refused.value.reason


# --- the import pauses the collector batch by batch -----------------------------------------


def test_an_import_pauses_the_collector_only_while_a_batch_is_read_and_written(
        db, session, tmp_path) -> None:
    from accord.access.policy import SYSTEM
    from accord.integration.imports import run_import
    from accord.integration.sources import create_source

    create_source(session, SYSTEM, name="crm", kind="crm", default_country="GB")
    session.commit()
    path = tmp_path / "people.csv"
    lines = ["id,first_name,last_name,email"] + [
        f"{i},Anna{i},Berg,anna{i}@example.com" for i in range(1, 8)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    during: list[bool] = []
    run = run_import(db, SYSTEM, "crm", path, batch_size=3,
                     progress=lambda _run: during.append(gc.isenabled()))
    assert (run.status, run.total, run.accepted) == ("completed", 7, 7)
    assert during == [False, False, False]  # batches of 3, 3 and 1: each inside its pause
    assert gc.isenabled()


def test_only_the_columns_narrower_than_the_standardisers_limits_are_checked_again() -> None:
    """A value the standardiser let through fits every column at least as wide as its limit."""
    for column, limit in ingest._COLUMN_LIMITS.items():
        if (column, limit) not in ingest._NARROWER:
            assert limit >= std._MAX_LENGTH[column]
    assert ("country", 2) in ingest._NARROWER
