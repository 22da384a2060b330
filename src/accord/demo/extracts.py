"""Messy source extracts of the demo customers, for identity-resolution work.

Real silos describe the same people differently: billing shouts names in capitals and has no
e-mail for many, the webshop keys on (mistyped) e-mail addresses and mixes up first and last
names, support has a free-text full name and phone numbers with spaces. `write_extracts` writes
the demo database's customers as three such CSV files, each row with the source's own external
id, plus `truth.csv` mapping every (source, external id) to the true customer id so that a
matcher can be scored. Deterministic for a database and a seed.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import select

from accord.core.contact import fold
from accord.core.db import get_engine
from accord.demo.pools import BY_CODE
from accord.models import Customer, CustomerAddress, CustomerEmail, CustomerPhone

BILLING = ("billing_account_no", "FIRST_NAME", "LAST_NAME", "DOB", "PHONE", "EMAIL", "STREET",
           "POSTCODE", "CITY", "COUNTRY")
WEBSHOP = ("shop_customer_id", "email", "first_name", "last_name", "birth_date", "phone", "address",
           "country")
SUPPORT = ("contact_ref", "full_name", "phone", "email", "city", "country")
TRUTH = ("source", "external_id", "person_id")

_NEIGHBOURS = {c: n for c, n in zip("abcdefghijklmnopqrstuvwxyz",
                                    ("qs", "vn", "xv", "sf", "wr", "dg", "fh", "gj", "uo", "hk",
                                     "jl", "k", "n", "bm", "ip", "o", "w", "et", "ad", "ry", "yi",
                                     "cb", "qe", "zc", "tu", "x"), strict=True)}
_DOMAIN_TYPOS = {"gmail.com": "gmial.com", "hotmail.fr": "hotmial.fr", "outlook.com": "outlok.com",
                 "yahoo.com": "yaho.com", "web.de": "wed.de", "gmx.de": "gmx.com",
                 "libero.it": "libero.com"}


@dataclass
class Person:
    id: int
    first: str
    last: str
    dob: Any
    country: str
    email: str | None
    e164: str | None
    line1: str | None
    city: str | None
    postcode: str | None


def typo(text: str, rnd: random.Random) -> str:
    """One keyboard slip: a swapped, dropped, doubled or neighbouring letter."""
    if len(text) < 3:
        return text
    i = 1 + int(rnd.random() * (len(text) - 2))
    kind = int(rnd.random() * 4)
    if kind == 0:
        return text[:i - 1] + text[i] + text[i - 1] + text[i + 1:]
    if kind == 1:
        return text[:i] + text[i + 1:]
    if kind == 2:
        return text[:i] + text[i] + text[i:]
    low = text[i].lower()
    near = _NEIGHBOURS.get(low)
    if not near:
        return text[:i] + text[i + 1:]
    ch = near[int(rnd.random() * len(near))]
    return text[:i] + (ch.upper() if text[i].isupper() else ch) + text[i + 1:]


class _Ids:
    """Source ids that look arbitrary but are unique: a bijection of a counter modulo 10^9."""

    def __init__(self, prefix: str, multiplier: int, salt: int) -> None:
        # an odd multiplier not divisible by 5 is invertible modulo 10^9: no two counters collide
        assert multiplier % 2 and multiplier % 5
        self.prefix, self.multiplier, self.salt, self.n = prefix, multiplier, salt % 10**9, 0

    def next(self) -> str:
        self.n += 1
        return f"{self.prefix}{(self.n * self.multiplier + self.salt) % 10**9:09d}"


def _people(url: str | None, batch: int = 5000, limit: int | None = None) -> Iterator[Person]:
    engine = get_engine(url)
    last_id, seen = 0, 0
    with engine.connect() as conn:
        while limit is None or seen < limit:
            rows = conn.execute(
                select(Customer.id, Customer.first_name, Customer.last_name, Customer.date_of_birth,
                       Customer.country).where(Customer.id > last_id).order_by(Customer.id)
                .limit(batch if limit is None else min(batch, limit - seen))).all()
            if not rows:
                return
            lo, hi = rows[0].id, rows[-1].id
            emails = dict(conn.execute(
                select(CustomerEmail.customer_id, CustomerEmail.email_normalized)
                .where(CustomerEmail.customer_id.between(lo, hi),
                       CustomerEmail.is_primary.is_(True))).all())
            phones = dict(conn.execute(select(CustomerPhone.customer_id, CustomerPhone.e164)
                                       .where(CustomerPhone.customer_id.between(lo, hi),
                                              CustomerPhone.is_primary.is_(True))).all())
            addresses = {a.customer_id: a for a in conn.execute(
                select(CustomerAddress.customer_id, CustomerAddress.line1, CustomerAddress.city,
                       CustomerAddress.postcode)
                .where(CustomerAddress.customer_id.between(lo, hi),
                       CustomerAddress.is_primary.is_(True))).all()}
            for row in rows:
                addr = addresses.get(row.id)
                yield Person(row.id, row.first_name, row.last_name, row.date_of_birth,
                             row.country or "GB", emails.get(row.id), phones.get(row.id),
                             addr.line1 if addr else None, addr.city if addr else None,
                             addr.postcode if addr else None)
            seen += len(rows)
            last_id = hi


def _national(e164: str | None) -> str:
    if not e164:
        return ""
    number = phonenumbers.parse(e164)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def _spaced(e164: str | None) -> str:
    if not e164:
        return ""
    number = phonenumbers.parse(e164)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _date(value: Any, country: str) -> str:
    if value is None:
        return ""
    if country == "US":
        return value.strftime("%m/%d/%Y")
    return value.strftime("%d.%m.%Y" if country in ("DE", "SE", "NL") else "%d/%m/%Y")


def _mangle_email(email: str, rnd: random.Random) -> str:
    local, _, domain = email.partition("@")
    if domain in _DOMAIN_TYPOS and rnd.random() < 0.5:
        return f"{local}@{_DOMAIN_TYPOS[domain]}"
    return f"{typo(local, rnd)}@{domain}"


def write_extracts(out_dir: Path | str, seed: int = 42, *, url: str | None = None,
                   limit: int | None = None) -> dict[str, int]:
    """Write billing.csv, webshop.csv, support.csv and truth.csv; return the row count of each."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    r = rnd.random
    ids = {"billing": _Ids("B", 738_219_617, seed * 1_000_003 + 123_456_789),
           "webshop": _Ids("W", 402_115_993, seed * 1_000_033 + 987_654_321),
           "support": _Ids("S", 918_273_649, seed * 1_000_037 + 555_123_457)}
    counts = dict.fromkeys(("billing", "webshop", "support", "truth"), 0)
    files = {name: (out / f"{name}.csv").open("w", newline="", encoding="utf-8")
             for name in counts}
    try:
        writers = {name: csv.writer(fh) for name, fh in files.items()}
        for name, header in (("billing", BILLING), ("webshop", WEBSHOP), ("support", SUPPORT),
                             ("truth", TRUTH)):
            writers[name].writerow(header)

        def emit(source: str, row: list[Any], person: Person) -> None:
            ext = ids[source].next()
            writers[source].writerow([ext, *row])
            writers["truth"].writerow([source, ext, person.id])
            counts[source] += 1
            counts["truth"] += 1

        for p in _people(url, limit=limit):
            country = BY_CODE.get(p.country)
            country_name = country.name if country else p.country
            if r() < 0.75:  # billing: capitals, national phone, many e-mails missing
                first, last = p.first, p.last
                if r() < 0.3:
                    first, last = fold(first), fold(last)
                if r() < 0.05:
                    last = typo(last, rnd)
                elif r() < 0.03:
                    first = typo(first, rnd)
                copies = 2 if r() < 0.02 else 1
                for _ in range(copies):
                    emit("billing", [first.upper(), last.upper(), _date(p.dob, p.country),
                                     _national(p.e164), p.email if p.email and r() < 0.55 else "",
                                     (p.line1 or "").upper(), p.postcode or "",
                                     (p.city or "").upper(), p.country], p)
            if r() < 0.7:  # webshop: keyed by (sometimes mistyped) e-mail; names sometimes swapped
                accounts = 2 if r() < 0.04 else 1
                for k in range(accounts):
                    email = p.email or ""
                    if email and (k == 1 or r() < 0.05):
                        email = _mangle_email(email, rnd)
                    first, last = p.first, p.last
                    if r() < 0.07:
                        first, last = last, first
                    place = f"{p.postcode or ''} {p.city or ''}".strip()
                    address = ", ".join(x for x in (p.line1, place) if x)
                    emit("webshop", [email.lower(), first, last,
                                     p.dob.isoformat() if p.dob and r() < 0.6 else "",
                                     p.e164 if p.e164 and r() < 0.5 else "", address,
                                     country_name], p)
            if r() < 0.35:  # support: one name field, phone with spaces, gaps
                x = r()
                full = (f"{p.last}, {p.first}" if x < 0.1 else f"{p.first} {p.last}".lower()
                        if x < 0.15 else f"{p.first} {p.last}")
                if r() < 0.04:
                    full = typo(full, rnd)
                emit("support", [full, _spaced(p.e164) if r() < 0.8 else "",
                                 p.email if p.email and r() < 0.7 else "",
                                 p.city if r() < 0.6 else "", country_name if r() < 0.8 else ""], p)
    finally:
        for fh in files.values():
            fh.close()
    return counts
