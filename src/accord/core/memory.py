"""Memory management for bulk work: pausing Python's cyclic garbage collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic collector for a batch that allocates many small, acyclic objects.

    A resolution batch (rows, pairs, links, golden plans) or an import batch (rows, payloads,
    standardised values) lives until it ends; the collector traversed those objects again and
    again (an eighth of a million-record resolution, about as much of an import). Reference
    counting still frees them; collection resumes afterwards, so cycles made meanwhile are
    collected then. Nested use is safe: only the outermost pause turns collection back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
