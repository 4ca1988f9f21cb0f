"""The ``emporium`` command as an operator runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _env(**values: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("EMPORIUM_")}
    env.pop("DATABASE_URL", None)
    env.update(values)
    return env


def emporium(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_invalid_setting_stops_startup_with_one_line(tmp_path: Path) -> None:
    result = emporium("api", env=_env(EMPORIUM_API_PORT="http"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "emporium: invalid setting EMPORIUM_API_PORT: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]


def test_worker_without_database_says_which_variable(tmp_path: Path) -> None:
    result = emporium("worker", env=_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "EMPORIUM_DATABASE_URL is not set" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_worker_whose_metrics_port_is_taken_says_so_and_which_variable(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(
            EMPORIUM_DATABASE_URL="postgresql://postgres@127.0.0.1:1/none",
            EMPORIUM_WORKER_METRICS_ADDRESS=f"127.0.0.1:{port}",
        )
        result = emporium("worker", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert f"cannot serve the worker's metrics on 127.0.0.1:{port}" in result.stderr
    assert "set EMPORIUM_WORKER_METRICS_ADDRESS to a free host:port, or to off" in result.stderr


def test_migrate_then_seed_once(databases, tmp_path: Path) -> None:
    import asyncio

    url = asyncio.run(databases.clone(empty=True))
    try:
        env = _env(EMPORIUM_DATABASE_URL=url)
        migrated = emporium("migrate", env=env, cwd=tmp_path)
        assert migrated.returncode == 0, migrated.stderr
        assert "database upgraded to head" in migrated.stdout
        first = emporium("seed", env=env, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith("demo catalog loaded: 2 vendors, 5 products")
        again = emporium("seed", env=env, cwd=tmp_path)
        assert again.stdout.strip() == "demo catalog already loaded"
    finally:
        asyncio.run(databases.drop(url))


@pytest.mark.slow
def test_api_processes_serve_one_set_of_metrics(databases, tmp_path: Path) -> None:
    """``emporium api --workers 2``: whichever process answers ``GET /metrics`` counts the
    requests both answered."""
    import asyncio
    import time
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    url = asyncio.run(databases.clone())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _env(
        EMPORIUM_ENVIRONMENT="test",
        EMPORIUM_DATABASE_URL=url,
        EMPORIUM_DATA_DIR=str(tmp_path / "data"),
        EMPORIUM_JWT_KEYS='{"k1": "a-test-signing-key-that-is-long-enough-0123456789"}',
        EMPORIUM_LOG_LEVEL="WARNING",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> str:
        with urllib.request.urlopen(base + path, timeout=5) as answer:  # noqa: S310
            return str(answer.read().decode())

    def products_counted(text: str) -> float:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                if sample.name == "emporium_http_requests_total" and labels == {
                    "method": "GET", "route": "/products", "status": "200"
                }:  # fmt: skip
                    return sample.value
        return 0.0

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get("/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, "the API did not start"
                assert server.poll() is None, "the API exited"
                time.sleep(0.2)
        for _ in range(30):  # new connections: the kernel spreads them over both processes
            get("/products")
        scraped = {products_counted(get("/metrics")) for _ in range(10)}
        assert scraped == {30.0}
    finally:
        server.terminate()
        server.wait(timeout=30)
        asyncio.run(databases.drop(url))


def test_dev_refuses_a_taken_port_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = emporium(
            "dev",
            env=_env(EMPORIUM_API_PORT=str(port), EMPORIUM_DATA_DIR=str(tmp_path / "data")),
            cwd=tmp_path,
        )
    assert result.returncode == 2
    assert f"port {port} (the API) is already in use" in result.stderr
    assert "EMPORIUM_API_PORT" in result.stderr
    assert not (tmp_path / "data").exists(), "nothing may start when a port is taken"


def test_grant_role_makes_the_first_admin(databases, tmp_path: Path) -> None:
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    url = asyncio.run(databases.clone())

    async def insert_user_and_read_role(step: str) -> str | None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                if step == "insert":
                    await connection.execute(
                        text(
                            "INSERT INTO users (id, username, username_key, email, email_key, "
                            "status) VALUES (gen_random_uuid(), 'Root', 'root', "
                            "'Root@Example.com', 'root@example.com', 'active')"
                        )
                    )
                return await connection.scalar(
                    text("SELECT platform_role FROM users WHERE email_key = 'root@example.com'")
                )
        finally:
            await engine.dispose()

    try:
        asyncio.run(insert_user_and_read_role("insert"))
        env = _env(EMPORIUM_DATABASE_URL=url)
        granted = emporium("grant-role", "ROOT@example.com", "admin", env=env, cwd=tmp_path)
        assert granted.returncode == 0, granted.stderr
        assert asyncio.run(insert_user_and_read_role("read")) == "admin"
        missing = emporium("grant-role", "nobody@example.com", "admin", env=env, cwd=tmp_path)
        assert missing.returncode == 2
        assert (
            missing.stderr.strip()
            == "emporium: no account with the email address nobody@example.com"
        )
    finally:
        asyncio.run(databases.drop(url))


@pytest.mark.parametrize(
    "command",
    [
        "dev",
        "api",
        "worker",
        "migrate",
        "seed",
        "reindex",
        "grant-role",
        "healthcheck",
        "stuck-orders",
    ],
)
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    result = emporium(command, "--help", env=_env(), cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: emporium {command}")
