"""Messy source extracts: the same people, deliberately noisy, with a complete ground truth."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from accord.core.contact import fold, normalize_phone
from accord.core.db import session_scope
from accord.demo.extracts import typo, write_extracts
from accord.demo.generator import ensure_demo
from accord.models import Customer, CustomerEmail, CustomerPhone

NOW = datetime(2026, 1, 15, tzinfo=UTC)


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_extracts_describe_the_same_people_with_noise_and_full_truth(db, tmp_path):
    ensure_demo(300, 5, False, now=NOW, progress=lambda *_: None)
    counts = write_extracts(tmp_path / "a", seed=9)
    again = write_extracts(tmp_path / "b", seed=9)
    assert counts == again
    for name in ("billing", "webshop", "support", "truth"):
        first, second = (tmp_path / d / f"{name}.csv" for d in ("a", "b"))
        assert first.read_bytes() == second.read_bytes()

    with session_scope(write=False) as s:
        people = {c.id: c for c in s.execute(select(Customer)).scalars()}
        email = {e.customer_id: e.email_normalized for e in s.execute(
            select(CustomerEmail).where(CustomerEmail.is_primary.is_(True))).scalars()}
        phone = {p.customer_id: p.e164 for p in s.execute(
            select(CustomerPhone).where(CustomerPhone.is_primary.is_(True))).scalars()}

    out = tmp_path / "a"
    truth = read(out / "truth.csv")
    assert len(truth) == counts["truth"]
    assert counts["truth"] == counts["billing"] + counts["webshop"] + counts["support"]
    keys = [(t["source"], t["external_id"]) for t in truth]
    assert len(set(keys)) == len(keys)
    person = {k: int(t["person_id"]) for k, t in zip(keys, truth, strict=True)}
    assert set(person.values()) <= set(people)
    assert len(set(person.values())) > 250  # nearly everyone appears somewhere

    billing = read(out / "billing.csv")
    webshop = read(out / "webshop.csv")
    support = read(out / "support.csv")
    assert len(billing) == counts["billing"] and len(webshop) == counts["webshop"]
    ids = ({r["billing_account_no"] for r in billing} | {r["shop_customer_id"] for r in webshop}
           | {r["contact_ref"] for r in support})
    assert ids == {ext for _, ext in keys}  # the ground truth covers every row, and only them

    # billing: capitals, national phone numbers, e-mails often missing, a few typos
    typos = 0
    for row in billing:
        p = people[person["billing", row["billing_account_no"]]]
        assert row["FIRST_NAME"] == row["FIRST_NAME"].upper()
        if row["PHONE"]:
            assert not row["PHONE"].startswith("+")
            assert normalize_phone(row["PHONE"], row["COUNTRY"]) == phone[p.id]
        typos += (fold(row["LAST_NAME"]), fold(row["FIRST_NAME"])) != (fold(p.last_name),
                                                                       fold(p.first_name))
    assert 0 < typos < len(billing) * 0.2
    assert 0.2 < sum(not r["EMAIL"] for r in billing) / len(billing) < 0.8

    # webshop: lower-case e-mails (some mistyped), names sometimes swapped
    swapped = mistyped = 0
    for row in webshop:
        p = people[person["webshop", row["shop_customer_id"]]]
        assert row["email"] == row["email"].lower()
        swapped += (row["first_name"], row["last_name"]) == (p.last_name, p.first_name)
        mistyped += bool(row["email"]) and row["email"] != email[p.id]
    assert swapped > 0 and mistyped > 0
    assert swapped + mistyped < len(webshop) * 0.3

    # support: one name field, international numbers with spaces, gaps
    for row in support:
        p = people[person["support", row["contact_ref"]]]
        if row["phone"]:
            assert " " in row["phone"] and normalize_phone(row["phone"], None) == phone[p.id]
    assert any(not r["email"] for r in support) and any("," in r["full_name"] for r in support)


def test_typo_changes_one_keystroke():
    import random

    rnd = random.Random(1)
    for word in ("Schmidt", "Lovelace", "Müller", "ab"):
        out = typo(word, rnd)
        assert abs(len(out) - len(word)) <= 1
        if len(word) >= 3:
            assert out != word or sorted(out) == sorted(word)
