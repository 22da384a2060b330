"""Every table with personal data is declared in the registry, and every declaration is real."""

from __future__ import annotations

from accord.models import Base
from accord.privacy.registry import BY_TABLE, PERSONAL_HINTS, REGISTRY

# Columns whose names look personal but are not (catalogue and configuration data).
NOT_PERSONAL = {
    ("products", "name"), ("teams", "name"), ("custom_field_definitions", "help_text"),
    ("custom_field_definitions", "label"), ("accounts", "name"), ("accounts", "name_key"),
    ("order_lines", "description"), ("sources", "name"), ("import_runs", "file_name"),
    ("pipelines", "name"), ("pipeline_stages", "name"), ("lead_forms", "name"),
    ("assignment_rules", "name"), ("deal_lines", "description"),
    ("kb_categories", "name"), ("survey_schedules", "name"), ("business_calendars", "name"),
    ("routing_rules", "name"), ("sla_policies", "name"), ("canned_replies", "title"),
    ("canned_replies", "body"), ("kb_articles", "title"), ("kb_articles", "body"),
    ("kb_article_versions", "title"), ("kb_article_versions", "body"),
    ("sla_targets", "first_response_minutes"), ("sla_targets", "next_response_minutes"),
    ("tickets", "first_response_due_at"), ("tickets", "next_response_due_at"),
    ("tickets", "first_response_seconds"),
}


def _looks_personal(column: str) -> bool:
    parts = column.lower().split("_")
    return any(hint in parts or column.lower().startswith(hint) for hint in PERSONAL_HINTS)


def test_every_personal_looking_column_is_declared() -> None:
    missing = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if (table.name, column.name) in NOT_PERSONAL or not _looks_personal(column.name):
                continue
            declared = BY_TABLE.get(table.name)
            if declared is None or column.name not in declared.columns:
                missing.append(f"{table.name}.{column.name}")
    assert missing == [], f"personal columns missing from the registry: {missing}"


def test_declarations_name_real_tables_and_columns() -> None:
    tables = Base.metadata.tables
    for entry in REGISTRY:
        assert entry.table in tables, entry.table
        cols = set(tables[entry.table].columns.keys())
        assert set(entry.columns) <= cols, (entry.table, set(entry.columns) - cols)
        if entry.link != "payload":
            assert entry.link in cols, (entry.table, entry.link)


def test_hint_matching_catches_a_new_personal_column() -> None:
    assert _looks_personal("mobile_phone")
    assert _looks_personal("email")
    assert _looks_personal("date_of_birth")
    assert not _looks_personal("lifecycle_stage")
