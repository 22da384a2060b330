"""Registers every domain's job handlers with the worker."""

from __future__ import annotations

import importlib

DOMAIN_TASKS: tuple[str, ...] = (
    "accord.integration.resolution",  # integration.match: incremental identity resolution
    "accord.integration.imports",  # integration.import: large uploaded files
    "accord.integration.collection",  # integration.collection: aliases and groups, after a batch
    "accord.analytics.tasks",  # analytics.refresh: periodic KPI refresh
    "accord.sales.tasks",  # reminders, lead events from the collection API, lead rescoring
    "accord.service.tasks",  # SLA timers, ticket mail, surveys
)  # each module registers its job handlers on import


def register_all() -> None:
    for module in DOMAIN_TASKS:
        importlib.import_module(module)
