"""Background jobs of the worker process that run every so often until it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol

from core.clock import Clock

log = logging.getLogger("emporium.worker")


class Step(Protocol):
    """One run of a job, at the time it is given."""

    def __call__(self, *, now: datetime) -> Awaitable[object]: ...


async def run_every(
    interval_s: float,
    stop: asyncio.Event,
    step: Step,
    *,
    what: str,
    clock: Clock,
) -> None:
    """Run ``step(now)`` now and then every ``interval_s`` until ``stop``, with ``now`` read
    from ``clock`` for each run. A failure is logged and tried again next time, never fatal:
    these jobs repair what a crash left behind."""
    while not stop.is_set():
        try:
            await step(now=clock.now())
        except Exception:
            log.exception("%s failed; will try again", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
