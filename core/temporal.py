"""Connecting to Temporal, making sure the platform's search attributes exist, and the one
way to start a workflow."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from core.settings import Settings
from core.telemetry import client_interceptors
from workflows.contracts.search_attributes import ALL_SEARCH_ATTRIBUTES

log = logging.getLogger(__name__)

_INDEXED_TYPE = {
    "Text": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


def type_name(key: SearchAttributeKey) -> str:
    """The type as the Temporal CLI spells it (``Keyword``, ``KeywordList``, ``Int``...)."""
    return {
        "TEXT": "Text",
        "KEYWORD": "Keyword",
        "INT": "Int",
        "FLOAT": "Double",
        "BOOL": "Bool",
        "DATETIME": "Datetime",
        "KEYWORD_LIST": "KeywordList",
    }[key.indexed_value_type.name]


def dev_server_flags() -> list[str]:
    """``--search-attribute`` flags for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL_SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={type_name(key)}"]
    return flags


async def connect(
    settings: Settings,
    *,
    lazy: bool = False,
    tracer_provider: TracerProvider | None = None,
    runtime: Runtime | None = None,
) -> Client:
    """A client of the configured namespace; with ``tracer_provider`` what it starts, signals
    and updates continues the current trace (and so do the workers built on it); with
    ``runtime``, the SDK's metrics go where that runtime's telemetry says."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        lazy=lazy,
        interceptors=client_interceptors(tracer_provider),
        runtime=runtime,
    )


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register any of the platform's custom search attributes that the namespace lacks.

    Returns the names added. Servers that refuse (e.g. a managed namespace where attributes are
    set up out of band) get a warning, not a crash: workflows still run, they are just harder
    to find in the UI.
    """
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace), timeout=timedelta(seconds=10)
    )
    missing = {
        key.name: _INDEXED_TYPE[type_name(key)]
        for key in ALL_SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing),
            timeout=timedelta(seconds=10),
        )
    except RPCError as error:
        if error.status == RPCStatusCode.ALREADY_EXISTS:
            return []
        log.warning(
            "could not register search attributes",
            extra={"missing": sorted(missing), "error": str(error)},
        )
        return []
    log.info("registered search attributes", extra={"added": sorted(missing)})
    return sorted(missing)


# --- schedules ---------------------------------------------------------------------------------


def every(
    interval: timedelta,
    workflow: str,
    arg: object,
    *,
    id: str,
    task_queue: str,
    summary: str,
    note: str,
) -> Schedule:
    """A schedule starting ``workflow`` every ``interval`` (Temporal appends the due time to
    ``id``: one workflow id per run), one run at a time: a run still going when the next is
    due skips it, and after an outage one catch-up run stands for the runs missed (each run
    does all that is due, so the ones it stands for would find nothing left)."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            workflow, arg, id=id, task_queue=task_queue, static_summary=summary
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP,
            catchup_window=max(interval, timedelta(seconds=60)),
        ),
        state=ScheduleState(note=note),
    )


async def ensure_schedule(client: Client, schedule_id: str, schedule: Schedule) -> bool:
    """Create the schedule, or bring an existing one up to ``schedule`` while keeping its
    state (paused by an operator, its note); True when it was created."""
    try:
        await client.create_schedule(schedule_id, schedule)
        return True
    except ScheduleAlreadyRunningError:
        pass

    def updated(current: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule.state = current.description.schedule.state
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(schedule_id).update(updated)
    return False


# --- starting workflows ------------------------------------------------------------------------

#: How long a start may take before it counts as failed (the caller's row is stored already,
#: so nothing is lost: a reconciler, or the client's retry, starts it later).
START_TIMEOUT = timedelta(seconds=5)


class WorkflowStartFailed(Exception):
    """Temporal did not take the start (unreachable, or too slow); whether it started is
    unknown, and starting again is safe (ids are never reused)."""


async def start_workflow(
    client: Client,
    workflow: str,
    arg: object,
    *,
    id: str,
    task_queue: str,
    search_attributes: Sequence[SearchAttributePair[Any]] = (),
    summary: str | None = None,
    signal: str | None = None,
    signal_args: Sequence[object] = (),
) -> bool:
    """The one way the application starts a workflow, with one policy:

    - An id names one thing (an order, a refund, a payout run) and is never reused: a
      workflow that ended is not started again (``REJECT_DUPLICATE``).
    - Starting an id that runs or ran already is not an error: False (a retried request, a
      reconciler, two admins at once); True when this call started it.
    - With ``signal`` (signal-with-start), the signal is delivered whether the workflow ran
      already or starts now: True if it was delivered, False if the workflow had ended.
    - Temporal unreachable, or not answering within ``START_TIMEOUT``: ``WorkflowStartFailed``,
      for the caller to turn into its 503. Callers store their row first, so it is never lost.
    """
    try:
        await client.start_workflow(
            workflow,
            arg,
            id=id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            # A plain start refuses a running workflow; signal-with-start delivers to it (its
            # only behaviour: the server takes no other conflict policy with a signal).
            id_conflict_policy=(
                WorkflowIDConflictPolicy.UNSPECIFIED
                if signal is not None
                else WorkflowIDConflictPolicy.FAIL
            ),
            search_attributes=TypedSearchAttributes(list(search_attributes)),
            static_summary=summary,
            start_signal=signal,
            start_signal_args=signal_args,
            rpc_timeout=START_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        return False
    except (RPCError, RuntimeError) as error:
        # RuntimeError: a lazy client that cannot connect ("Failed client connect").
        log.warning(
            "could not start a workflow",
            extra={"workflow": workflow, "workflow_id": id, "error": type(error).__name__},
        )
        raise WorkflowStartFailed(f"Temporal did not start {id}") from error
    return True
