"""List parameters are checked when parsed; their SQL is built only when a query needs it."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select

from accord.core.errors import ValidationProblem
from accord.core.query import Filter, ListSpec, Sort, paginate, parse_list_params

_T = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("name", String))


def _spec(calls: list[tuple[str, object]]) -> ListSpec:
    def checked(value: object) -> object:
        calls.append(("check", value))
        if value == "bad":
            raise ValidationProblem("bad name", field="name")
        return str(value).upper()

    def by_name(op: str, value: object):
        calls.append(("build name", value))
        return _T.c.name == value

    def by_prefix(op: str, value: object):
        calls.append(("build prefix", value))
        return _T.c.name.startswith(str(value))

    return ListSpec(resource="t", id_column=_T.c.id, sorts={"id": Sort(_T.c.id, int)},
                    filters={"name": Filter(by_name, check=checked),
                             "prefix": Filter(by_prefix),
                             "id": Filter(_T.c.id, int)})


def _parse(spec: ListSpec, params: dict[str, str]):
    return parse_list_params(params, spec, hidden=set(), default_limit=10, max_limit=100)


def test_a_checked_filter_is_checked_at_once_and_built_on_first_use():
    calls: list[tuple[str, object]] = []
    params = _parse(_spec(calls), {"name": "ada", "id": "7"})
    assert calls == [("check", "ada")]
    assert len(params.conditions) == 2
    sql = str(paginate(select(_T.c.id), _spec([]), params).compile(
        compile_kwargs={"literal_binds": True}))
    assert "t.name = 'ADA'" in sql and "t.id = 7" in sql
    assert calls == [("check", "ada"), ("build name", "ADA")]
    params.where  # noqa: B018 - built once, kept
    assert calls.count(("build name", "ADA")) == 1


def test_a_refused_value_fails_the_parse_not_the_query():
    calls: list[tuple[str, object]] = []
    with pytest.raises(ValidationProblem) as exc:
        _parse(_spec(calls), {"name": "bad"})
    assert exc.value.field == "name"
    assert calls == [("check", "bad")]


def test_a_factory_without_a_check_runs_while_parsing():
    """It may refuse the value itself, so it is not put off."""
    calls: list[tuple[str, object]] = []
    params = _parse(_spec(calls), {"prefix": "Lo"})
    assert calls == [("build prefix", "Lo")]
    assert len(params.where) == 1 and calls == [("build prefix", "Lo")]


def test_bad_plain_values_are_refused_while_parsing():
    with pytest.raises(ValidationProblem) as exc:
        _parse(_spec([]), {"id": "seven"})
    assert exc.value.field == "id"
