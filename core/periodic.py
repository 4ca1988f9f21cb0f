"""Background jobs of the worker process that run every so often until it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("emporium.worker")


async def run_every(
    interval_s: float,
    stop: asyncio.Event,
    step: Callable[[], Awaitable[object]],
    *,
    what: str,
) -> None:
    """Run ``step`` now and then every ``interval_s`` until ``stop``. A failure is logged and
    tried again next time, never fatal: these jobs repair what a crash left behind."""
    while not stop.is_set():
        try:
            await step()
        except Exception:
            log.exception("%s failed; will try again", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
