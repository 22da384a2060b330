"""The service domain's job handlers: importing this module registers them with the worker."""

from __future__ import annotations

# Each part of the domain imports its job module below (one line each).
