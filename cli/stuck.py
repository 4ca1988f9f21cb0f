"""``emporium stuck-orders``: orders, parts and returns past their deadline, and orders whose
row and workflow disagree, each with its Temporal UI link (``commerce/operations.py``).

Exits 1 when it found anything (so a cron job or a CI smoke check can alert on it), 0 when
all is well.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

from commerce import operations
from core import database, temporal
from core.clock import SYSTEM_CLOCK, Clock
from core.settings import Settings


async def find(
    settings: Settings, *, limit: int, clock: Clock = SYSTEM_CLOCK
) -> list[operations.Finding]:
    """Everything worth a look, past-deadline first, then disagreements."""
    now = clock.now()
    engine = database.create_engine(settings)
    try:
        client = await temporal.connect(settings)
        async with database.create_sessionmaker(engine)() as session:
            late = await operations.past_deadline(session, settings, now=now, limit=limit)
            apart = await operations.disagreements(session, client, settings, now=now, limit=limit)
    finally:
        await engine.dispose()
    return late + apart


def render(findings: list[operations.Finding], settings: Settings, *, as_json: bool) -> str:
    if as_json:
        rows = [
            {**asdict(f), "id": str(f.id), "order_id": str(f.order_id), "link": f.ui_link(settings)}
            for f in findings
        ]
        return json.dumps(rows, indent=2)
    if not findings:
        return (
            "nothing stuck: every order, part and return is within its deadline and every "
            "open order's workflow is running"
        )
    lines = []
    for f in findings:
        lines.append(f"{f.problem:<24} {f.kind:<6} {f.id}  {f.status:<20} {f.detail}")
        lines.append(f"{'':<24} order {f.order_id}  {f.ui_link(settings)}")
    counts = ", ".join(f"{n} {problem}" for problem, n in operations.summarize(findings).items())
    lines.append(f"{len(findings)} found: {counts}")
    return "\n".join(lines)


def run(settings: Settings, *, limit: int, as_json: bool) -> int:
    findings = asyncio.run(find(settings, limit=limit))
    print(render(findings, settings, as_json=as_json))
    return 1 if findings else 0
