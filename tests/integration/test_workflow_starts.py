"""``core.temporal.start_workflow``, the one way the application starts a workflow, against a
real Temporal server: its one policy, case by case."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import SearchAttributePair
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.temporal import WorkflowStartFailed, start_workflow
from workflows.contracts.search_attributes import ORDER_ID


@workflow.defn(name="StartPolicyProbe", sandboxed=False)
class _Probe:
    """Waits for one ``poke`` signal and ends with what it carried."""

    def __init__(self) -> None:
        self._poked: list[str] = []

    @workflow.signal
    def poke(self, value: str) -> None:
        self._poked.append(value)

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.wait_condition(lambda: bool(self._poked))
        return f"{name}:{self._poked[0]}"


async def test_one_id_one_workflow_ever(temporal_env: WorkflowEnvironment) -> None:
    client = temporal_env.client
    queue = f"test-{uuid.uuid4().hex}"
    probe_id = f"probe:{uuid.uuid4()}"

    async def start(**extra: Any) -> bool:
        return await start_workflow(
            client,
            "StartPolicyProbe",
            "a",
            id=probe_id,
            task_queue=queue,
            **extra,  # type: ignore[arg-type]
        )

    async with Worker(client, task_queue=queue, workflows=[_Probe]):
        assert (
            await start(search_attributes=[SearchAttributePair(ORDER_ID, "o-1")], summary="probe")
            is True
        )
        # Running: a second start is no error, and starts nothing.
        assert await start() is False
        # Signal-with-start reaches the running workflow.
        assert await start(signal="poke", signal_args=["first"]) is True
        handle = client.get_workflow_handle(probe_id, result_type=str)
        assert await handle.result() == "a:first"
        described = await handle.describe()
        assert described.typed_search_attributes.get(ORDER_ID) == "o-1"
        # Ended: the id is never used again, by a start or by a signal-with-start.
        assert await start() is False
        assert await start(signal="poke", signal_args=["again"]) is False
        assert await handle.result() == "a:first"


async def test_signal_with_start_starts_a_missing_workflow(
    temporal_env: WorkflowEnvironment,
) -> None:
    client = temporal_env.client
    queue = f"test-{uuid.uuid4().hex}"
    probe_id = f"probe:{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, workflows=[_Probe]):
        started = await start_workflow(
            client,
            "StartPolicyProbe",
            "b",
            id=probe_id,
            task_queue=queue,
            signal="poke",
            signal_args=["hello"],
        )
        assert started is True
        assert await client.get_workflow_handle(probe_id, result_type=str).result() == "b:hello"


async def test_an_unreachable_temporal_is_a_start_failure() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = await Client.connect(f"127.0.0.1:{port}", lazy=True)
    with pytest.raises(WorkflowStartFailed):
        await start_workflow(
            client, "StartPolicyProbe", "c", id=f"probe:{uuid.uuid4()}", task_queue="nowhere"
        )
