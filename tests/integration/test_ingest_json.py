"""The fast JSON encoder writes exactly what `json` writes: content hashes depend on it."""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from accord.core.db import JSONText, dumps_json
from accord.integration.ingest import canonical_json, content_hash


@dataclasses.dataclass
class Point:
    x: int


class Tag(str):
    pass


class Count(int):
    pass


class Ratio(float):
    pass


class Bag(dict):
    pass


def reference(value: Any, sort_keys: bool, default_str: bool) -> str:
    return json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False,
                      default=str if default_str else None)


# every float orjson might format differently: tiny, huge, exponents, NaN and the infinities
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.sampled_from([1e-5, 2.5e-7, -1e-5, 1e16, 1e15, 1e-4, 1.5e300, 5e-324, -0.0, 0.1]),
    st.integers(-330, 308).map(lambda e: float(f"1e{e}")),
)
ints = st.one_of(st.integers(), st.integers(-(2 ** 70), 2 ** 70),
                 st.sampled_from([2 ** 63, -(2 ** 63), 2 ** 64, -(2 ** 63) - 1]))
# control characters, quotes, backslashes, line separators, non-ASCII and astral characters
text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(max_codepoint=0x7F)),
    st.lists(st.sampled_from(
        ["\x00", "\x1f", "\x7f", "\b", "\f", "\n", "\r", "\t", '"', "\\", "/", "\u2028",
         "é", "ß", "日本", "\U0001F600", "e-", "null", ":0.00001", "1e-05", "a"]),
        max_size=6).map("".join),
)
moments = st.one_of(
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
    st.times(),
    st.timedeltas(max_value=timedelta(days=1000), min_value=timedelta(days=-1000)),
)
odd = st.one_of(
    st.decimals(allow_nan=False), st.uuids(), st.builds(Point, st.integers()),
    st.builds(Tag, st.text()), st.builds(Count, st.integers()),
    st.builds(Ratio, st.floats()), st.builds(Bag, st.dictionaries(st.text(), st.integers())),
    st.frozensets(st.integers(), max_size=2), st.binary(max_size=4),
)
json_leaf = st.one_of(st.none(), st.booleans(), ints, floats, text)
json_values = st.recursive(
    json_leaf,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.tuples(children, children),
                               st.dictionaries(text, children, max_size=4)),
    max_leaves=20,
)
any_values = st.recursive(
    st.one_of(json_leaf, moments, odd),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(text, children, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=1500, deadline=None)
@given(any_values, st.booleans())
def test_with_default_str_it_writes_what_json_writes(value: Any, sort_keys: bool) -> None:
    assert dumps_json(value, sort_keys=sort_keys, default_str=True) == reference(
        value, sort_keys, True)


@settings(max_examples=1000, deadline=None)
@given(json_values, st.booleans())
def test_without_default_it_writes_what_json_writes(value: Any, sort_keys: bool) -> None:
    assert dumps_json(value, sort_keys=sort_keys) == reference(value, sort_keys, False)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(text, any_values, max_size=6))
def test_canonical_json_and_hash_are_those_of_the_json_module(payload: dict[str, Any]) -> None:
    expected = reference(payload, True, True)
    assert canonical_json(payload) == expected
    assert content_hash("event", payload) == content_hash("event", expected)


def test_values_json_refuses_are_refused_the_same_way() -> None:
    for value in ({"at": datetime(2024, 1, 1)}, {"n": Decimal("1.5")}, {1: "int key", "a": 2}):
        try:
            json.dumps(value, sort_keys=True)
        except TypeError as exc:
            expected: Any = type(exc)
        try:
            dumps_json(value, sort_keys=True)
        except TypeError as exc:
            assert type(exc) is expected
        else:
            raise AssertionError(f"{value!r} was encoded")


def test_known_differences_of_orjson_fall_back() -> None:
    value = {"nan": math.nan, "inf": -math.inf, "tiny": 1e-5, "exp": 2.5e-7, "big": 2 ** 64,
             "at": datetime(2024, 1, 1, 12, 30), "day": date(2024, 1, 2), "t": time(1, 2),
             "id": uuid.UUID(int=1), "ctl": "\x01\x1f\u2028é😀", "nested": [[1, [2.0, None]]]}
    expected = reference(value, True, True)
    assert '"at":"2024-01-01 12:30:00"' in expected and "NaN" in expected
    assert dumps_json(value, sort_keys=True, default_str=True) == expected


def test_serialised_text_is_stored_as_is() -> None:
    from accord.core.db import _json_serializer

    text = JSONText('{"b":1, "a":2}')
    assert _json_serializer(text) == '{"b":1, "a":2}'
    assert json.loads(_json_serializer({"é": [1, 2.5, None]})) == {"é": [1, 2.5, None]}
