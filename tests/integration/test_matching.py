"""The identity-resolution engine on a synthetic CRM extract with known duplicates (no database)."""

from __future__ import annotations

import itertools
import json
import os
import random
from datetime import date, timedelta

import pandas as pd
import pytest

from accord.integration import matching

FIRST = [
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william",
    "elizabeth", "david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah",
    "charles", "karen", "daniel", "nancy", "matthew", "lisa", "anthony", "betty", "mark",
    "margaret", "donald", "sandra", "steven", "ashley", "paul", "kimberly", "andrew", "emily",
]  # fmt: skip
LAST = [
    "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor",
    "moore", "jackson", "martin", "lee", "perez", "thompson", "white", "harris", "sanchez",
    "clark", "ramirez", "lewis", "robinson", "walker", "young", "allen", "king", "wright",
]  # fmt: skip
CITIES = ["leeds", "bristol", "york", "bath", "derby", "hull", "exeter", "oxford", "norwich"]
STREETS = ["high street", "station road", "church lane", "mill road", "park avenue", "the green"]
DOMAINS = ["gmail.com", "yahoo.co.uk", "outlook.com", "example.org"]
N_PEOPLE = 240


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["swap", "drop", "replace"])
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    return word[:i] + rng.choice("aeiourstn") + word[i + 1 :]


def _person(pid: int, rng: random.Random) -> dict:
    # A quarter of everyone are Smiths in London: common values must not merge people.
    common = pid % 4 == 0
    first, last = rng.choice(FIRST), "smith" if common else rng.choice(LAST)
    dob = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 50))
    return {
        "person": pid,
        "source": "billing",
        "first_name": first,
        "last_name": last,
        "date_of_birth": dob.isoformat(),
        "email": f"{first}.{last}{pid}@{rng.choice(DOMAINS)}",
        "phone": f"+4477009{pid:05d}",
        "address_line1": f"{rng.randrange(1, 200)} {rng.choice(STREETS)}",
        "postcode": f"LS{rng.randrange(1, 30)} {rng.randrange(1, 9)}{rng.choice('ABDEFG')}Q",
        "city": "london" if common else rng.choice(CITIES),
        "country": "GB",
    }


CORRUPTIONS = {
    "name_typo": lambda r, g: {"last_name": _typo(r["last_name"], g)},
    "swapped_names": lambda r, g: {"first_name": r["last_name"], "last_name": r["first_name"]},
    "missing_email": lambda r, g: {"email": None, "address_line1": None},
    "email_typo": lambda r, g: {
        "email": _typo(r["email"].split("@")[0], g) + "@" + r["email"].split("@")[1]
    },
    "email_domain": lambda r, g: {"email": r["email"].split("@")[0] + "@work.example.com"},
    "phone_prefix": lambda r, g: {"phone": "+353" + r["phone"][-9:], "email": None},
    "dob_transposed": lambda r, g: {
        "date_of_birth": r["date_of_birth"][:5]
        + r["date_of_birth"][8:]
        + "-"
        + r["date_of_birth"][5:7]
    },
    "missing_dob": lambda r, g: {"date_of_birth": None, "first_name": _typo(r["first_name"], g)},
}


def _dataset(seed: int = 7) -> pd.DataFrame:
    """People with a billing record; two in five also have a corrupted webshop record."""
    rng = random.Random(seed)
    rows, kinds = [], itertools.cycle(CORRUPTIONS)
    for pid in range(N_PEOPLE):
        base = _person(pid, rng)
        if base["date_of_birth"][8:] > "12":  # keep the day/month swap a valid date
            base["date_of_birth"] = base["date_of_birth"][:8] + "0" + str(rng.randrange(1, 10))
        rows.append(base)
        if pid % 5 in (1, 3):
            kind = next(kinds)
            dup = {**base, "source": "webshop", "corruption": kind}
            dup.update(CORRUPTIONS[kind](base, rng))
            rows.append(dup)
    frame = pd.DataFrame(rows)
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame.insert(0, "unique_id", range(1000, 1000 + len(frame)))
    return frame


def _records(frame: pd.DataFrame) -> pd.DataFrame:
    """What the matcher may see: the truth and the corruption label stay out."""
    return frame.drop(columns=["person", "corruption"], errors="ignore")


def _true_pairs(frame: pd.DataFrame) -> set[tuple[int, int]]:
    pairs = set()
    for _, group in frame.groupby("person"):
        pairs.update(itertools.combinations(sorted(group["unique_id"]), 2))
    return pairs


def _cluster_pairs(clusters: dict[int, int]) -> set[tuple[int, int]]:
    members: dict[int, list[int]] = {}
    for uid, cid in clusters.items():
        members.setdefault(cid, []).append(uid)
    pairs = set()
    for group in members.values():
        pairs.update(itertools.combinations(sorted(group), 2))
    return pairs


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _dataset()


@pytest.fixture(scope="module")
def model(data: pd.DataFrame) -> dict:
    return matching.train(_records(data), engine="duckdb", seed=42)


@pytest.fixture(scope="module")
def pairs(model: dict, data: pd.DataFrame) -> pd.DataFrame:
    return matching.predict(model, _records(data), threshold=0.01, engine="duckdb")


def test_resolves_the_duplicates_and_keeps_namesakes_apart(
    pairs: pd.DataFrame, data: pd.DataFrame
) -> None:
    clusters = matching.cluster(pairs, data["unique_id"], threshold=0.95)
    assert set(clusters) == set(data["unique_id"])
    assert all(cid <= uid for uid, cid in clusters.items())  # the smallest member names it
    found, truth = _cluster_pairs(clusters), _true_pairs(data)
    assert found <= truth, f"merged different people: {sorted(found - truth)[:5]}"
    assert len(found) >= 0.95 * len(truth)
    by_id = data.set_index("unique_id")
    # Every kind of corruption is resolved at least once.
    kind = by_id["corruption"].dropna().to_dict()
    resolved_kinds = {kind.get(b, kind.get(a)) for a, b in found}
    assert resolved_kinds == set(CORRUPTIONS)
    # The Smiths of London share a surname and a city but stay apart.
    smiths = data[(data["last_name"] == "smith") & (data["city"] == "london")]
    assert smiths["person"].nunique() > 40
    assert len({clusters[u] for u in smiths["unique_id"]}) >= smiths["person"].nunique()


def test_thresholds_split_links_from_the_review_queue(model: dict, data: pd.DataFrame) -> None:
    assert matching.Thresholds() == matching.Thresholds(upper=0.95, lower=0.60)
    with pytest.raises(ValueError):
        matching.Thresholds(upper=0.5, lower=0.9)
    limits = matching.Thresholds(upper=0.99, lower=0.50)
    names = data.groupby(["first_name", "last_name"])["person"].nunique()
    known = next(
        r
        for r in data[data["source"] == "billing"].itertuples()
        if names[(r.first_name, r.last_name)] == 1 and r.last_name != "smith"
    )
    name = {"source": "support", "first_name": known.first_name, "last_name": known.last_name}
    vague = {"unique_id": 1, **name, "city": known.city}  # a steward should look at this
    sure = {"unique_id": 2, **name, "date_of_birth": known.date_of_birth, "email": known.email}
    common = next(n for n, k in names.items() if k > 1 and n[1] == "smith")
    stranger = {"unique_id": 3, "source": "support", "first_name": common[0],
                "last_name": "smith", "city": "london", "date_of_birth": "1940-02-29"}  # fmt: skip
    arrivals = pd.DataFrame([vague, sure, stranger])
    scored = matching.match_new(model, arrivals, _records(data), threshold=0)
    decided = matching.triage(scored, limits)
    decision = {(row.unique_id_l, row.unique_id_r): row.decision for row in decided.itertuples()}
    assert decision[(1, known.unique_id)] == "review"
    assert decision[(2, known.unique_id)] == "link"
    assert {d for (left, _), d in decision.items() if left == 3} == {"no_match"}
    assert set(decided["decision"]) == {"link", "review", "no_match"}
    bands = decided.groupby("decision")["match_probability"]
    assert bands.min()["link"] >= 0.99
    assert bands.min()["review"] >= 0.50 and bands.max()["review"] < 0.99
    assert bands.max()["no_match"] < 0.50


def test_explain_weights_add_up_to_the_match_weight(
    model: dict, pairs: pd.DataFrame, data: pd.DataFrame
) -> None:
    by_id = _records(data).set_index("unique_id")
    swapped = data.loc[data["corruption"] == "swapped_names", "person"]
    sample = pd.concat(
        [
            pairs.head(3),
            pairs.tail(3),
            pairs[pairs["unique_id_l"].map(data.set_index("unique_id")["person"]).isin(swapped)
                  & (pairs["gamma_first_name"] == 4)].head(1),
        ]
    )  # fmt: skip
    assert len(sample) == 7
    prior = matching.prior_match_weight(model)
    for row in sample.itertuples():
        left = {"unique_id": row.unique_id_l, **by_id.loc[row.unique_id_l].to_dict()}
        right = {"unique_id": row.unique_id_r, **by_id.loc[row.unique_id_r].to_dict()}
        fields = matching.explain(model, left, right)
        assert [f["field"] for f in fields] == model["accord"]["columns"]
        total = prior + sum(f["match_weight"] for f in fields)
        assert total == pytest.approx(row.match_weight, abs=1e-6)
        first = next(f for f in fields if f["field"] == "first_name")
        assert first["left"] == left["first_name"] and first["right"] == right["first_name"]
    last = fields  # the swapped pair, last in the sample
    assert next(f for f in last if f["field"] == "last_name")["level"] == (
        "First and last names swapped"
    )
    assert all(f["match_weight"] == 0 for f in last if f["level"] == "Missing on one side")


def test_match_new_links_new_records_to_existing_ones(model: dict, data: pd.DataFrame) -> None:
    existing = data[data["source"] == "billing"]
    arrivals = data[data["source"] == "webshop"].copy()
    # Two arrivals of a person nobody has seen yet must find each other.
    stranger = {**arrivals.iloc[0].to_dict(), "person": -1, "corruption": None}
    stranger.update(first_name="ottoline", last_name="featherstonehaugh",
                    email="ottoline@example.net", phone="+447911123456", postcode="YO1 7HH",
                    date_of_birth="1977-03-21", address_line1="1 minster yard")  # fmt: skip
    twin = {**stranger, "last_name": "featherstonhaugh", "phone": None}
    stranger["unique_id"], twin["unique_id"] = 5001, 5002
    arrivals = pd.concat([arrivals, pd.DataFrame([stranger, twin])], ignore_index=True)

    pairs = matching.match_new(model, _records(arrivals), _records(existing), threshold=0.5)
    new_ids = set(arrivals["unique_id"])
    assert set(pairs["unique_id_l"]).union(pairs["unique_id_r"]) & new_ids
    assert not any(  # no pair among existing records is scored again
        (left not in new_ids) and (right not in new_ids)
        for left, right in zip(pairs["unique_id_l"], pairs["unique_id_r"], strict=True)
    )
    clusters = matching.cluster(pairs, list(existing["unique_id"]) + list(new_ids), threshold=0.95)
    person = data.set_index("unique_id")["person"].to_dict() | {5001: -1, 5002: -1}
    linked = correct = 0
    for uid in arrivals["unique_id"]:
        mates = {u for u, c in clusters.items() if c == clusters[uid] and u != uid}
        if mates:
            linked += 1
            correct += all(person[m] == person[uid] for m in mates)
    assert correct == linked
    assert linked >= 0.9 * len(arrivals)
    assert clusters[5001] == clusters[5002] == 5001
    assert set(pairs.columns) >= {"match_weight", "match_probability", "gamma_email", "mw_email"}


def test_match_new_with_nothing_to_compare_against(model: dict, data: pd.DataFrame) -> None:
    # a person nobody has seen: the caller found no candidates by any indexed key
    one = _records(data[data["source"] == "webshop"].head(1))
    assert matching.match_new(model, one, [], threshold=0.5).empty
    assert matching.match_new(model, [], one, threshold=0.5).empty
    assert matching.prepare([]).columns[0] == "unique_id"


def test_a_model_trains_when_no_pair_meets_a_deterministic_rule() -> None:
    """Sources that share no e-mail, phone or exact name and birth date: the prior cannot be
    estimated from deterministic pairs (it would be 0 and every weight log 0); training starts
    EM from a prior of its own and the model scores."""
    rnd = random.Random(5)
    firsts = ["anna", "ben", "clara", "david", "eva", "felix", "greta", "hugo", "ines", "jan"]
    lasts = ["meyer", "koch", "wolf", "lange", "krause", "weber", "becker", "klein", "roth"]
    rows = []
    for i in range(80):
        first, last = rnd.choice(firsts), rnd.choice(lasts)
        dob = f"19{rnd.randint(40, 99)}-{rnd.randint(1, 12):02d}-{rnd.randint(10, 28)}"
        postcode = f"{rnd.randint(10000, 99999)}"
        rows.append({"unique_id": i, "source": "a", "first_name": first, "last_name": last,
                     "date_of_birth": dob, "postcode": postcode, "city": "berlin"})
        if i < 30:  # the same person in a second source: a typo in the first name, the day
            rows.append({"unique_id": 1000 + i, "source": "b", "first_name": first[:-1] + "x",
                         "last_name": last, "date_of_birth": dob[:-1] + "1",
                         "postcode": postcode, "city": "berlin"})
    model = matching.train(rows, seed=1)
    assert 0 < model["probability_two_random_records_match"] < 1
    scored = matching.predict(model, rows, threshold=0.01)
    assert not scored.empty


def test_model_json_round_trips(model: dict, pairs: pd.DataFrame, data: pd.DataFrame) -> None:
    stored = json.loads(json.dumps(model))
    again = matching.predict(stored, _records(data), threshold=0.01, engine="duckdb")
    pd.testing.assert_frame_equal(again, pairs)
    assert stored["accord"]["trained_records"] == len(data)
    assert "accord" not in matching.splink_model(stored)


def test_cluster_is_connected_components() -> None:
    edges = pd.DataFrame(
        {"unique_id_l": [5, 2, 9, 7], "unique_id_r": [9, 5, 11, 8],
         "match_probability": [0.99, 0.97, 0.96, 0.40]}
    )  # fmt: skip
    clusters = matching.cluster(edges, [2, 5, 7, 8, 9, 11, 30], threshold=0.95)
    assert clusters == {2: 2, 5: 2, 9: 2, 11: 2, 7: 7, 8: 8, 30: 30}
    assert matching.cluster(edges.iloc[:0], [3], threshold=0.5) == {3: 3}


def test_engine_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from accord.core.settings import reset_settings

    monkeypatch.setenv("ACCORD_ANALYTICS_ENGINE", "spark")
    reset_settings()
    try:
        assert matching.engine_name() == "spark"
    finally:
        monkeypatch.delenv("ACCORD_ANALYTICS_ENGINE")
        reset_settings()
    assert matching.engine_name() == "duckdb"


@pytest.fixture(scope="module")
def spark():
    """Local Spark needs a Java runtime: skipped with the reason without one, except under CI."""
    import shutil

    from tests.conftest import IN_CI

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        message = "Spark needs a Java runtime (java not found)"
        if IN_CI:
            pytest.fail(message + " (CI=true: the Spark test must run)", pytrace=False)
        pytest.skip(message)
    return matching.spark_session()


def test_duckdb_and_spark_resolve_the_same_clusters(spark, data: pd.DataFrame) -> None:
    sample = data[data["person"] < 120]
    records = _records(sample)
    results = {}
    for engine in ("duckdb", "spark"):
        model = matching.train(records, engine=engine, seed=42)
        pairs = matching.predict(model, records, threshold=0.5, engine=engine)
        results[engine] = (model, matching.cluster(pairs, records["unique_id"], threshold=0.95))
    assert results["spark"][1] == results["duckdb"][1]
    assert results["spark"][0]["sql_dialect"] == "spark"
    # A model trained on one engine scores on the other (rebuilt for its SQL dialect).
    cross = matching.predict(results["spark"][0], records, threshold=0.5, engine="duckdb")
    assert matching.cluster(cross, records["unique_id"], threshold=0.95) == results["spark"][1]
    found = _cluster_pairs(results["spark"][1])
    assert found and found <= _true_pairs(sample)
