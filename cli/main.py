"""The ``emporium`` command: dev, api, worker, migrate, seed, reindex, grant-role, healthcheck,
stuck-orders."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from core.logs import configure_logging
from core.settings import Settings, SettingsError, load_settings


class CommandError(Exception):
    """The command cannot do what was asked; the message says why."""


def _api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    configure_logging(settings.log_level, settings.log_format, process="api")
    if args.workers > 1:
        _share_metrics_between_processes(settings)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    return 0


def _share_metrics_between_processes(settings: Settings) -> None:
    """Several API processes count in one folder (prometheus-client's multiprocess mode), so
    ``GET /metrics`` answers the same totals whichever process serves it. Set before the
    processes start; counts of an earlier run are removed (they would be counted again)."""
    import shutil
    from pathlib import Path

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    folder = Path(given) if given else settings.data_dir.resolve() / "api-metrics"
    if folder.exists() and not given:
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def _worker(settings: Settings, _: argparse.Namespace) -> int:
    from workers.main import run_worker
    from workers.metrics import MetricsNotServed

    configure_logging(settings.log_level, settings.log_format, process="worker")
    settings.sqlalchemy_url  # noqa: B018 - fail early with a clear line if unset
    try:
        asyncio.run(run_worker(settings))
    except MetricsNotServed as error:
        raise CommandError(str(error)) from None
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from models.migrate import downgrade, upgrade

    configure_logging(settings.log_level, settings.log_format, process="migrate")
    if args.downgrade:
        downgrade(settings.sqlalchemy_url, args.downgrade)
        print(f"database downgraded to {args.downgrade}")
    else:
        upgrade(settings.sqlalchemy_url, args.revision)
        print(f"database upgraded to {args.revision}")
    return 0


def _seed(settings: Settings, _: argparse.Namespace) -> int:
    from commerce.catalog.demo import seed_demo_catalog
    from core import database
    from core.clock import SYSTEM_CLOCK

    async def seed() -> str:
        engine = database.create_engine(settings)
        try:
            async with database.create_sessionmaker(engine).begin() as session:
                result = await seed_demo_catalog(session, now=SYSTEM_CLOCK.now())
        finally:
            await engine.dispose()
        if not result.created:
            return "demo catalog already loaded"
        return (
            f"demo catalog loaded: {result.vendors} vendors, {result.products} products, "
            f"{result.variants} variants"
        )

    print(asyncio.run(seed()))
    return 0


def _grant_role(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from commerce.accounts.users import normalize_email
    from core import database
    from models import PlatformRole, User

    role = None if args.role == "none" else PlatformRole(args.role)

    async def grant() -> str:
        _, key = normalize_email(args.email)
        engine = database.create_engine(settings)
        try:
            async with database.create_sessionmaker(engine).begin() as session:
                user = await session.scalar(select(User).where(User.email_key == key))
                if user is None:
                    raise CommandError(f"no account with the email address {args.email}")
                user.platform_role = role
        finally:
            await engine.dispose()
        return f"{args.email}: role {args.role}"

    print(asyncio.run(grant()))
    return 0


def _reindex(settings: Settings, args: argparse.Namespace) -> int:
    from commerce.search.indexer import SearchIndexer, backend_for
    from core import database

    configure_logging(settings.log_level, settings.log_format, process="reindex")

    async def reindex() -> str:
        engine = database.create_engine(settings)
        sessionmaker = database.create_sessionmaker(engine)
        backend = backend_for(settings, sessionmaker)
        try:
            report = await SearchIndexer(sessionmaker, backend).reindex_all(args.batch_size)
        finally:
            await backend.close()
            await engine.dispose()
        return (
            f"reindexed {report.indexed} products in {report.seconds:.1f} s "
            f"({report.documents_per_second:.0f} documents/s)"
        )

    print(asyncio.run(reindex()))
    return 0


def _healthcheck(settings: Settings, args: argparse.Namespace) -> int:
    from cli.healthcheck import check_api, check_worker

    ok, message = check_api(settings) if args.component == "api" else check_worker(settings)
    print(message)
    return 0 if ok else 1


def _stuck_orders(settings: Settings, args: argparse.Namespace) -> int:
    from cli.stuck import run

    configure_logging(settings.log_level, settings.log_format, process="stuck-orders")
    return run(settings, limit=args.limit, as_json=args.json)


def _dev(settings: Settings, _: argparse.Namespace) -> int:
    from cli.dev import run_dev

    return run_dev(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emporium",
        description="Emporium marketplace backend. Settings come from EMPORIUM_* variables.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "dev",
        help="run everything on this machine: embedded PostgreSQL, Temporal dev server + UI, "
        "worker, API, demo catalog",
    ).set_defaults(handler=_dev)
    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", default=None)
    api.add_argument("--port", type=int, default=None)
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    api.set_defaults(handler=_api)
    sub.add_parser("worker", help="run the Temporal worker").set_defaults(handler=_worker)
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("revision", nargs="?", default="head", help="upgrade to (default head)")
    migrate.add_argument("--downgrade", metavar="REVISION", help="go back to an older revision")
    migrate.set_defaults(handler=_migrate)
    sub.add_parser("seed", help="load the demo catalog (once)").set_defaults(handler=_seed)
    reindex = sub.add_parser("reindex", help="rebuild the search index from the catalog")
    reindex.add_argument("--batch-size", type=int, default=1000)
    reindex.set_defaults(handler=_reindex)
    grant = sub.add_parser(
        "grant-role", help="give an account a platform role (how the first admin is made)"
    )
    grant.add_argument("email")
    grant.add_argument("role", choices=["admin", "operations", "none"])
    grant.set_defaults(handler=_grant_role)
    health = sub.add_parser("healthcheck", help="exit 0 if a component is healthy")
    health.add_argument("component", choices=["api", "worker"])
    health.set_defaults(handler=_healthcheck)
    stuck = sub.add_parser(
        "stuck-orders",
        help="list orders, parts and returns past their deadline and orders whose workflow "
        "and database disagree, with Temporal UI links; exit 1 if any",
    )
    stuck.add_argument("--limit", type=int, default=500, help="at most this many of each kind")
    stuck.add_argument("--json", action="store_true", help="print JSON")
    stuck.set_defaults(handler=_stuck_orders)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return int(args.handler(settings, args))
    except (SettingsError, CommandError) as error:
        print(f"emporium: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """Console entry point. Exits without interpreter teardown once the command is done:
    temporalio's Rust threads can abort CPython's finalization (temporalio/sdk-python#300)
    and turn a clean stop into a core dump."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
