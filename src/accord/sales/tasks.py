"""The sales domain's job handlers: importing this module registers them with the worker."""

from __future__ import annotations

# Each part of the domain imports its job module below (one line each).
# leads:
import accord.sales.lead_events  # noqa: E402,F401  collection → leads

# activities:
from accord.sales import activity_tasks as _activity_tasks  # noqa: E402,F401  reminders, mail

# forecast:
from accord.sales import scoring_tasks as _scoring_tasks  # noqa: E402,F401  lead rescoring, training
