"""`accord sales ...`: sales commands (lead import, lead-scoring training, forecasts)."""

from __future__ import annotations

import typer

sales_app = typer.Typer(help="Sales: leads, lead scoring, pipelines and forecasts.",
                        no_args_is_help=True)
# Each part of the domain adds its commands below.
# leads:
# forecast:
