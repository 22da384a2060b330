"""Batch resolution (`accord resolve`): a model trained without labels finds the duplicates."""

from __future__ import annotations

import csv
import io
import itertools
import random

from sqlalchemy import func, select
from typer.testing import CliRunner

from accord.access.policy import SYSTEM
from accord.cli import app as cli
from accord.core.db import session_scope
from accord.demo.extracts import typo
from accord.integration.ingest import Incoming, ingest_batch
from accord.integration.resolution import active_model, resolve_all, resolve_pending
from accord.integration.sources import create_source
from accord.integration.stewardship import accept_review
from accord.models import Customer, MatchModel, MatchReview, Source, SourceProfile

FIRST = ["Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hugo", "Ines", "Jan",
         "Karla", "Lukas", "Mara", "Nils", "Olga", "Paul", "Rita", "Sven", "Tina", "Ugo"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
        "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz", "Zimmermann",
        "Krüger", "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Köhler", "Maier"]
CITIES = [("10115", "Berlin"), ("20095", "Hamburg"), ("80331", "München"), ("50667", "Köln"),
          ("60311", "Frankfurt am Main"), ("70173", "Stuttgart")]


def people(n: int, rnd: random.Random) -> list[dict[str, str]]:
    out = []
    for i in range(n):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        postcode, city = rnd.choice(CITIES)
        out.append({
            "first_name": first, "last_name": last,
            "date_of_birth": f"{rnd.randint(1940, 2004)}-{rnd.randint(1, 12):02d}-"
                             f"{rnd.randint(1, 28):02d}",
            "email": f"{first}.{last}{i}@example.de".lower().replace("ü", "ue")
                     .replace("ö", "oe"),
            "phone": f"+4917{rnd.randint(10_000_000, 99_999_999)}",
            "address_line1": f"{rnd.choice(['Haupt', 'Linden', 'Garten'])}str. {i % 90 + 1}",
            "postcode": postcode, "city": city, "country": "DE",
        })
    return out


def noisy(person: dict[str, str], rnd: random.Random) -> dict[str, str]:
    copy = dict(person)
    roll = rnd.random()
    if roll < 0.3:
        copy["first_name"] = typo(copy["first_name"], rnd)
    elif roll < 0.5:
        copy["email"] = ""
    elif roll < 0.7:
        copy["phone"] = ""
    elif roll < 0.8:
        copy["last_name"] = copy["last_name"].upper()
    return copy


def test_resolve_all_trains_a_model_and_clusters_duplicates(db) -> None:
    rnd = random.Random(7)
    crowd = people(220, rnd)
    truth: dict[tuple[str, str], int] = {}
    with session_scope(db) as s:
        crm = create_source(s, SYSTEM, name="crm", kind="crm", trust_rank=10)
        shop = create_source(s, SYSTEM, name="shop", kind="webshop", trust_rank=20)
        crm_items, shop_items = [], []
        for i, person in enumerate(crowd):
            crm_items.append(Incoming("profile", person, dict(person), f"C{i}"))
            truth[("crm", f"C{i}")] = i
            if i % 3:  # two thirds of the people are in both sources
                record = noisy(person, rnd)
                shop_items.append(Incoming("profile", record, dict(record), f"S{i}"))
                truth[("shop", f"S{i}")] = i
        ingest_batch(s, SYSTEM, crm, crm_items)
        ingest_batch(s, SYSTEM, shop, shop_items)
    with session_scope(db) as s:
        result = resolve_all(s)
    assert result.profiles == len(truth)

    runner = CliRunner()
    out = runner.invoke(cli, ["export", "golden", "--format", "csv"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert len(rows) == len(truth)
    golden = {(r["source"], r["external_id"]): r["golden_id"] for r in rows}
    assert all(golden.values())

    def pairs(assignment: dict[tuple[str, str], object]) -> set[frozenset[tuple[str, str]]]:
        groups: dict[object, list[tuple[str, str]]] = {}
        for key, group in assignment.items():
            groups.setdefault(group, []).append(key)
        return {frozenset(p) for members in groups.values()
                for p in itertools.combinations(members, 2)}

    found, true = pairs(golden), pairs(truth)
    precision = len(found & true) / len(found)
    recall = len(found & true) / len(true)
    assert precision >= 0.97 and recall >= 0.9, (precision, recall)

    with session_scope(db, write=False) as s:
        model = active_model(s)
        assert model is not None and model.version == 1 and model.trained_on == len(truth)
        linked = s.scalars(select(SourceProfile.link_method)
                           .where(SourceProfile.link_method == "auto")).all()
        assert linked  # the model, not only the rules, linked profiles
        customers = s.scalar(select(func.count()).select_from(Customer))
        assert customers == len(set(golden.values()))

    # a second run changes nothing: everyone is linked, the model is reused
    with session_scope(db) as s:
        again = resolve_all(s)
        assert again.profiles == 0 and again.new_customers == 0
        assert s.scalar(select(func.count()).select_from(MatchModel)) == 1

    # with the model active, a person nobody has seen (no candidate shares a key) gets a new
    # golden customer from the incremental path, and a known one joins theirs
    stranger = {"first_name": "Ottoline", "last_name": "Featherstonehaugh",
                "email": "ottoline@example.net", "date_of_birth": "1977-03-21",
                "country": "DE"}
    returning = noisy(crowd[1], rnd)
    with session_scope(db) as s:
        shop = s.scalar(select(Source).where(Source.name == "shop"))
        ingest_batch(s, SYSTEM, shop, [Incoming("profile", stranger, dict(stranger), "S-new")])
    with session_scope(db) as s:
        assert resolve_pending(s).new_customers == 1
    with session_scope(db) as s:
        crm = s.scalar(select(Source).where(Source.name == "crm"))
        ingest_batch(s, SYSTEM, crm, [Incoming("profile", returning, dict(returning), "C1-b")])
    with session_scope(db) as s:
        assert resolve_pending(s).new_customers == 0
    with session_scope(db, write=False) as s:
        by_id = dict(s.execute(select(SourceProfile.external_id, SourceProfile.customer_id))
                     .all())
        assert by_id["S-new"] is not None and by_id["S-new"] not in (by_id["C1"], by_id["S1"])
        assert by_id["C1-b"] == by_id["C1"]


def test_the_batch_proposes_to_join_customers_the_rules_kept_apart(db) -> None:
    """Profiles linked before there was a model (by the conservative rules of the incremental
    path) are not re-linked by the batch, but the people the model finds split across two
    customers are proposed for review as merges, and accepting one merges them."""
    rnd = random.Random(11)
    crowd = people(120, rnd)
    with session_scope(db) as s:
        crm = create_source(s, SYSTEM, name="crm", kind="crm", trust_rank=10)
        shop = create_source(s, SYSTEM, name="shop", kind="webshop", trust_rank=20)
        ingest_batch(s, SYSTEM, crm, [Incoming("profile", p, dict(p), f"C{i}")
                                      for i, p in enumerate(crowd)])
        split = []
        for i, person in enumerate(crowd[:40]):
            # no e-mail or phone, a typo in the surname: no rule links them
            record = {**person, "email": "", "phone": "",
                      "last_name": typo(person["last_name"], rnd)}
            split.append(Incoming("profile", record, dict(record), f"S{i}"))
        ingest_batch(s, SYSTEM, shop, split)
    with session_scope(db) as s:
        assert active_model(s) is None
        resolve_pending(s)  # the incremental path, before any model: the rules
    with session_scope(db, write=False) as s:
        apart = s.scalar(select(func.count()).select_from(Customer))
        assert apart > 120  # the rules did not see the shop's people as the crm's
    with session_scope(db) as s:
        result = resolve_all(s)
        assert result.profiles == 0 and result.reviews >= 20
    with session_scope(db, write=False) as s:
        reviews = s.scalars(select(MatchReview).where(MatchReview.status == "pending")).all()
        profiles = {p.id: p for p in s.scalars(select(SourceProfile))}
        # proposed: the same person's two records, each already on a customer of its own
        # (two namesakes of the crm, whose generated e-mails differ by a digit, may be too)
        right = [r for r in reviews
                 if {profiles[r.left_id].external_id, profiles[r.right_id].external_id}
                 == {f"C{profiles[r.left_id].external_id[1:]}",
                     f"S{profiles[r.left_id].external_id[1:]}"}]
        assert len(right) >= 30 and len(reviews) - len(right) <= 2, len(reviews)
        first = right[0]
        left, right_ = profiles[first.left_id], profiles[first.right_id]
        assert left.customer_id != right_.customer_id
        review_id, version = first.id, first.version
    with session_scope(db) as s:
        accept_review(s, SYSTEM, review_id, expected_version=version)
    with session_scope(db, write=False) as s:
        a, b = (s.get(SourceProfile, i) for i in (left.id, right_.id))
        assert a.customer_id == b.customer_id
    with session_scope(db) as s:  # run again: nothing new, the decided pair not proposed again
        again = resolve_all(s)
        assert again.reviews == 0
