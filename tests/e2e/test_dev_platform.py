"""README command one: `emporium dev` brings up the whole platform on embedded defaults."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - local server
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return response.status, json.loads(response.read())


def _post(url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(  # noqa: S310 - local test server
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status, json.loads(response.read())


def _read_until(process: subprocess.Popen[bytes], marker: str, timeout_s: float) -> str:
    # Raw reads on the descriptor: a buffered readline() would hide lines from select().
    assert process.stdout is not None
    fd = process.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + timeout_s
    while marker.encode() not in seen:
        if time.monotonic() > deadline or process.poll() is not None:
            raise AssertionError(f"no {marker!r} from emporium dev; stdout so far:\n{seen!r}")
        if selector.select(timeout=0.5):
            seen += os.read(fd, 65536)
    return seen.decode()


def _start(tmp_path: Path, ports: list[int]) -> subprocess.Popen[bytes]:
    api, temporal, ui, worker_metrics = ports
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    env.pop("DATABASE_URL", None)  # embedded PostgreSQL, as on a fresh machine
    env.update(
        EMPORIUM_DATA_DIR=str(tmp_path / "data"),
        EMPORIUM_API_PORT=str(api),
        EMPORIUM_TEMPORAL_ADDRESS=f"127.0.0.1:{temporal}",
        EMPORIUM_TEMPORAL_UI_PORT=str(ui),
        EMPORIUM_WORKER_METRICS_ADDRESS=f"127.0.0.1:{worker_metrics}",
        EMPORIUM_LOG_LEVEL="WARNING",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "dev"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "dev.stderr").open("wb"),
    )


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=60)


def test_dev_starts_everything_seeds_once_and_stops_cleanly(tmp_path: Path) -> None:
    ports = _free_ports(4)
    api, temporal, ui, worker_metrics = ports
    process = _start(tmp_path, ports)
    try:
        banner = _read_until(process, "Press Ctrl-C to stop.", timeout_s=120)
        assert "Demo catalog   loaded now: 2 vendors, 5 products" in banner
        assert f"http://127.0.0.1:{api}/docs" in banner
        assert f"http://127.0.0.1:{ui}" in banner
        # Both metrics endpoints, printed and serving: the worker's has the demo seed's
        # workflow in the Temporal SDK's metrics.
        worker_url = f"http://127.0.0.1:{worker_metrics}/metrics"
        assert f"Metrics        http://127.0.0.1:{api}/metrics (API), {worker_url}" in banner
        with urllib.request.urlopen(worker_url, timeout=5) as page:
            served = page.read().decode()
        assert "emporium_activity_duration_seconds_count" in served
        assert "temporal_workflow_completed_total" in served
        with urllib.request.urlopen(f"http://127.0.0.1:{api}/metrics", timeout=5) as page:
            assert "emporium_http_requests_total" in page.read().decode()

        assert _get(f"http://127.0.0.1:{api}/readyz") == (
            200,
            {"status": "ready", "checks": {"database": "ok", "temporal": "ok"}},
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{ui}/", timeout=5) as page:
            assert page.status == 200
        credentials = {"email": "newcomer@example.com", "password": "plum-Orbit-vessel-42-q"}
        signed_up = _post(
            f"http://127.0.0.1:{api}/auth/signup", {"username": "newcomer", **credentials}
        )
        assert signed_up[0] == 201
        status, tokens = _post(f"http://127.0.0.1:{api}/auth/login", credentials)
        assert status == 200
        access = {"Authorization": f"Bearer {tokens['access_token']}"}
    finally:
        code = _stop(process)
    assert code == 0
    for port in ports:
        assert not _listening(port), f"port {port} still served after Ctrl-C"

    # Second start on the same data folder: persistent state, the catalog is not loaded twice.
    process = _start(tmp_path, ports)
    try:
        banner = _read_until(process, "Press Ctrl-C to stop.", timeout_s=120)
        assert "Demo catalog   already loaded" in banner
        # The signing key is kept in the data folder: sign-ins survive a restart.
        status, me = _get(f"http://127.0.0.1:{api}/me", headers=access)
        assert (status, me["email"]) == (200, "newcomer@example.com")
    finally:
        assert _stop(process) == 0
    assert (tmp_path / "data" / "temporal.db").exists()
    assert not _listening(temporal)
