"""The service domain's job handlers: importing this module registers them with the worker."""

from __future__ import annotations

from accord.service import mail_out as _mail_out  # noqa: F401  ticket replies by e-mail
from accord.service import sla_tasks as _sla_tasks  # noqa: F401  SLA warnings and breaches
from accord.service import surveys_tasks as _surveys_tasks  # noqa: F401  after solve, schedules
