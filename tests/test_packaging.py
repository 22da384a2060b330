"""`run.py` installs from `requirements.lock` only (then the package with --no-deps), so a
dependency named in `pyproject.toml` but missing from the lock would be missing on every fresh
install while a developer's older environment still has it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


def test_every_declared_dependency_is_pinned_in_the_lock() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    declared |= {_name(r) for group in project["optional-dependencies"].values() for r in group}
    lines = [line for line in (ROOT / "requirements.lock").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert all("==" in line for line in lines), "the lock pins exact versions"
    pinned = {_name(line) for line in lines}
    assert declared - pinned == set()
    assert {"uuid-utils", "psycopg", "uvloop"} <= pinned  # names normalise across spellings
