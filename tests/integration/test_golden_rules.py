"""Survivorship: which source's value each golden field takes, and the lineage it records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from accord.integration.golden import DEFAULT_RULES, ProfileView, build

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def view(pid: int, rank: int, days: int, **values: object) -> ProfileView:
    return ProfileView(pid, pid * 10, rank, T0 + timedelta(days=days), dict(values))


def test_most_trusted_takes_the_best_ranked_source_even_when_outvoted() -> None:
    golden = build([view(1, 50, 1, last_name="Whyte"), view(2, 50, 2, last_name="Whyte"),
                    view(3, 10, 0, last_name="White")], DEFAULT_RULES)
    assert golden.values["last_name"] == "White"
    assert golden.lineage[3]["last_name"] == "most_trusted"
    assert "last_name" not in golden.lineage.get(1, {})


def test_among_equally_trusted_sources_agreement_beats_the_newest_typo() -> None:
    views = [view(1, 50, 1, last_name="White", first_name="Natasha"),
             view(2, 50, 2, last_name="White", first_name="Natasha"),
             view(3, 50, 9, last_name="Whiye", first_name="Natasha")]
    golden = build(views, DEFAULT_RULES)
    assert golden.values["last_name"] == "White"
    assert {pid for pid, fields in golden.lineage.items() if "last_name" in fields} == {1, 2}
    # no majority among them: the most recent observation
    golden = build([view(1, 50, 1, first_name="J"), view(2, 50, 5, first_name="John")],
                   DEFAULT_RULES)
    assert golden.values["first_name"] == "John"
    # a less trusted source does not count towards the majority
    golden = build([view(1, 50, 1, last_name="White"), view(2, 60, 2, last_name="Whiye"),
                    view(3, 60, 3, last_name="Whiye"), view(4, 50, 4, last_name="Whiye")],
                   DEFAULT_RULES)
    assert golden.values["last_name"] == "Whiye"  # 50-ranked: one each, the newer wins


def test_the_other_rules() -> None:
    views = [view(1, 10, 1, first_name="Jo", country="DE"),
             view(2, 50, 3, first_name="Johanna", country="AT"),
             view(3, 50, 2, first_name="Jo", country="DE")]
    assert build(views, {**DEFAULT_RULES, "first_name": "most_complete"}).values[
        "first_name"] == "Johanna"
    assert build(views, {**DEFAULT_RULES, "first_name": "most_frequent"}).values[
        "first_name"] == "Jo"
    most_recent = build(views, DEFAULT_RULES)  # country: most recent by default
    assert most_recent.values["country"] == "AT"
    assert most_recent.lineage[2]["country"] == "most_recent"


def test_an_address_without_a_city_is_kept() -> None:
    """A source that gives the address as one line, unsplit (no country to find its postcode
    by): the line is the customer's address, not dropped for want of a city."""
    golden = build([view(1, 50, 1, address_line1="26 Sylvia Lights, E49 0ZE Port Peterview")],
                   DEFAULT_RULES)
    assert golden.addresses == [(("26 Sylvia Lights, E49 0ZE Port Peterview", None, "", None,
                                  None, None), True)]
    assert golden.lineage[1]["address"] == "most_recent"
    assert build([view(1, 50, 1, city="Leeds")], DEFAULT_RULES).addresses == []
