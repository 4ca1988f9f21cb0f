"""The worker's metrics endpoint: our ``emporium_*`` metrics and the Temporal SDK's own
(``temporal_*``: task latency, slots, polls and their failures), on one port of its own
(``EMPORIUM_WORKER_METRICS_ADDRESS``, default ``127.0.0.1:9464``; README, "Observability").

The SDK's metrics come from its ``Runtime`` telemetry: its Prometheus exporter listens on a
loopback port only this process knows, and each scrape of ours reads it and serves its
families beside ours (parsed with prometheus-client's parser, so what we serve is one
well-formed exposition). The server is prometheus-client's own, in a thread: a scrape never
waits for the event loop, and a busy event loop never delays a scrape.
"""

from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from core.metrics import REGISTRY

log = logging.getLogger(__name__)

#: How long a scrape waits for the SDK's exporter (it answers from memory).
SDK_SCRAPE_TIMEOUT_S = 2.0


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def temporal_runtime(sdk_port: int) -> Runtime:
    """A Temporal runtime whose SDK metrics are exported in Prometheus format on loopback:
    counters end in ``_total`` and durations are in seconds with their unit in the name
    (``temporal_workflow_task_schedule_to_start_latency_seconds``)."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"127.0.0.1:{sdk_port}",
                counters_total_suffix=True,
                unit_suffix=True,
                durations_as_seconds=True,
            ),
        )
    )


class MetricsNotServed(Exception):
    """The metrics address cannot be listened on (taken, or not an address of this host)."""


class _Ours(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class _TemporalSdk(Collector):
    def __init__(self, url: str) -> None:
        self._url = url

    def collect(self) -> Iterator[Metric]:
        try:
            with urllib.request.urlopen(self._url, timeout=SDK_SCRAPE_TIMEOUT_S) as answer:  # noqa: S310
                text = answer.read().decode()
        except (urllib.error.URLError, OSError) as error:
            # Ours are still served; the gap in temporal_* shows on the dashboard.
            log.warning("could not read the Temporal SDK's metrics", extra={"error": str(error)})
            return
        yield from text_string_to_metric_families(text)


class WorkerMetrics:
    """The Temporal runtime to connect the worker's client with, and the endpoint serving
    its metrics with ours. ``start`` serves; ``close`` stops serving."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sdk_port = free_loopback_port()
        self.runtime = temporal_runtime(self.sdk_port)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Ours())
        self.registry.register(_TemporalSdk(f"http://127.0.0.1:{self.sdk_port}/metrics"))
        self._server: WSGIServer | None = None
        self._thread: Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> None:
        try:
            self._server, self._thread = start_http_server(
                self.port, addr=self.host, registry=self.registry
            )
        except OSError as error:
            raise MetricsNotServed(
                f"cannot serve the worker's metrics on {self.host}:{self.port} ({error}); set "
                "EMPORIUM_WORKER_METRICS_ADDRESS to a free host:port, or to off"
            ) from None
        # Port 0 (tests): the port the system chose.
        self.port = self._server.server_address[1]
        log.info("worker metrics served", extra={"url": self.url})

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
