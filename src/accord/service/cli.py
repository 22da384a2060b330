"""`accord service ...`: customer-service commands (SLA checks, knowledge base, surveys)."""

from __future__ import annotations

import typer

service_app = typer.Typer(help="Customer service: tickets, SLAs, knowledge base, surveys.",
                          no_args_is_help=True)
# Each part of the domain adds its commands below.
