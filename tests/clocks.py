"""The machine's clock, for the few things in tests that other processes or OpenSSL check
against it, even when the suite runs with its own clock moved (``--clock-shift-days``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine


def machine_now() -> datetime:
    """What the machine's clock says (OpenSSL, subprocesses), moved suite clock or not."""
    if time_machine.escape_hatch.is_travelling():
        return datetime.fromtimestamp(time_machine.escape_hatch.time.time(), UTC)
    return datetime.now(UTC)


def suite_shift() -> timedelta:
    """How far this process's clock is moved ahead of the machine's (zero normally)."""
    if not time_machine.escape_hatch.is_travelling():
        return timedelta(0)
    return timedelta(seconds=round(datetime.now(UTC).timestamp() - machine_now().timestamp()))


def travel_prelude(shift: timedelta) -> str:
    """Python source that moves a subprocess's clock by ``shift`` (ticking), so a server we
    start shares the suite's time; empty when there is nothing to move."""
    if not shift:
        return ""
    return (
        "import datetime as _d, time_machine as _t; "
        "_t.travel(_d.datetime.now(_d.UTC) + _d.timedelta(seconds="
        f"{shift.total_seconds()!r}), tick=True).start(); "
    )
