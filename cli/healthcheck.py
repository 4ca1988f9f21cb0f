"""Health checks for container orchestrators (docker compose ``healthcheck:``)."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from core import temporal
from core.settings import Settings


def check_api(settings: Settings) -> tuple[bool, str]:
    host = "127.0.0.1" if settings.api_host in {"0.0.0.0", "::"} else settings.api_host  # noqa: S104
    url = f"http://{host}:{settings.api_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200, f"api: {response.status}"
    except (urllib.error.URLError, OSError) as error:
        return False, f"api: {error}"


def check_worker(settings: Settings) -> tuple[bool, str]:
    """Healthy when a worker on this host is polling the task queue."""

    async def pollers() -> list[str]:
        client = await temporal.connect(settings)
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return [poller.identity for poller in response.pollers]

    try:
        identities = asyncio.run(pollers())
    except Exception as error:
        return False, f"worker: {error}"
    here = f"@{socket.gethostname()}"
    ours = [identity for identity in identities if identity.endswith(here)]
    return bool(ours), f"worker: {len(ours)} poller(s) from this host"
