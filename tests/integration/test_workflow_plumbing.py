"""A real workflow, run by the real worker, whose real activity writes to PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

from google.protobuf.duration_pb2 import Duration
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from commerce.notifications.mail import EmailMessage, queue_mail
from core import database
from core.temporal import ensure_search_attributes
from models import InventoryLevel, MailOutbox, Product, Variant, Vendor
from tests.conftest import make_settings
from workers.main import run_worker
from workers.registry import Dependencies, build_worker
from workflows.contracts.demo import SeedDemoWorkflowInput
from workflows.contracts.search_attributes import ALL_SEARCH_ATTRIBUTES
from workflows.demo import SeedDemoCatalogWorkflow


async def _counts(url: str) -> tuple[int, int, int, int]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return tuple(  # type: ignore[return-value]
                [
                    await connection.scalar(select(func.count()).select_from(model)) or 0
                    for model in (Vendor, Product, Variant, InventoryLevel)
                ]
            )
    finally:
        await engine.dispose()


async def test_seed_workflow_writes_the_catalog_once(
    temporal_env: WorkflowEnvironment, fresh_database_url: str, temporal_address: str
) -> None:
    settings = make_settings(fresh_database_url, temporal_address)
    engine = database.create_engine(settings)
    task_queue = f"test-{uuid.uuid4().hex}"
    client = temporal_env.client
    try:
        deps = Dependencies.build(settings, database.create_sessionmaker(engine))
        async with build_worker(client, settings, deps, task_queue=task_queue):
            first = await client.execute_workflow(
                SeedDemoCatalogWorkflow.run,
                SeedDemoWorkflowInput(),
                id=f"seed:{uuid.uuid4()}",
                task_queue=task_queue,
            )
            after_first = await _counts(fresh_database_url)
            second = await client.execute_workflow(
                SeedDemoCatalogWorkflow.run,
                SeedDemoWorkflowInput(),
                id=f"seed:{uuid.uuid4()}",
                task_queue=task_queue,
            )
    finally:
        await engine.dispose()

    assert first.created is True
    assert after_first == (first.vendors, first.products, first.variants, first.variants)
    assert first.vendors == 2
    assert first.variants > first.products > 0
    assert second.created is False
    assert await _counts(fresh_database_url) == after_first


async def test_test_server_has_every_platform_search_attribute(
    temporal_env: WorkflowEnvironment,
) -> None:
    listed = await temporal_env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    for key in ALL_SEARCH_ATTRIBUTES:
        assert key.name in listed.custom_attributes


async def test_worker_registers_missing_search_attributes_once(
    temporal_env: WorkflowEnvironment, temporal_address: str
) -> None:
    namespace = f"ns-{uuid.uuid4().hex[:12]}"
    await temporal_env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86_400)
        )
    )
    client = await Client.connect(temporal_address, namespace=namespace)
    # A new namespace becomes visible to the operator API shortly after registration.
    for _ in range(50):
        try:
            added = await ensure_search_attributes(client, namespace)
            break
        except Exception:
            await asyncio.sleep(0.2)
    else:
        raise AssertionError("namespace never became usable")
    assert added == sorted(key.name for key in ALL_SEARCH_ATTRIBUTES)
    assert await ensure_search_attributes(client, namespace) == []


async def test_run_worker_serves_workflows_and_delivers_mail_until_stopped(
    temporal_env: WorkflowEnvironment, fresh_database_url: str, temporal_address: str
) -> None:
    task_queue = f"test-{uuid.uuid4().hex}"
    settings = make_settings(fresh_database_url, temporal_address, temporal_task_queue=task_queue)
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    async with async_sessionmaker(engine).begin() as session:
        await queue_mail(session, EmailMessage("a@example.com", "Hello", "Body", "test"))
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(settings, stop=stop))
    try:
        result = await asyncio.wait_for(
            temporal_env.client.execute_workflow(
                SeedDemoCatalogWorkflow.run,
                SeedDemoWorkflowInput(),
                id=f"seed:{uuid.uuid4()}",
                task_queue=task_queue,
            ),
            timeout=30,
        )
        assert result.created is True
        for _ in range(100):  # the dispatcher polls every second
            async with engine.connect() as connection:
                sent = await connection.scalar(select(MailOutbox.sent_at))
            if sent is not None:
                break
            await asyncio.sleep(0.1)
        assert sent is not None, "the worker did not deliver the queued mail"
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=settings.worker_shutdown_grace_s + 5)
        await engine.dispose()
    assert running.exception() is None
