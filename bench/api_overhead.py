"""Per-request cost of the API's plumbing: request id, access log line, problem+json.

    .venv/bin/python bench/api_overhead.py [--seconds 10] [--connections 64]

Starts `emporium api` (one process; uvicorn picks uvloop + httptools) with JSON logs written
to a file, and drives GET /healthz (trivial JSON through the whole middleware stack) and a
404 (the problem+json path) with wrk (Debian package `wrk`). Compare with ../shared/LIMITS.md:
"uvicorn with uvloop + httptools, 1 process, trivial JSON ~6,400 req/s".
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

LIMITS_TRIVIAL_JSON_RPS = 6400


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wrk(url: str, seconds: int, connections: int) -> tuple[float, str]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", out)
    return rps, p99.group(1) if p99 else "?"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--log-level", default="INFO", help="WARNING drops the access log")
    args = parser.parse_args()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    env.update(
        EMPORIUM_DATABASE_URL=os.environ.get(
            "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        EMPORIUM_API_PORT=str(port),
        EMPORIUM_LOG_LEVEL=args.log_level,
    )
    with tempfile.NamedTemporaryFile(prefix="emporium-api-", suffix=".log") as log:
        api = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "api"], env=env, stdout=log, stderr=log
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310
                    break
                except OSError:
                    time.sleep(0.1)
            for name, path in (("GET /healthz", "/healthz"), ("404 problem", "/no-such-route")):
                rps, p99 = _wrk(base + path, args.seconds, args.connections)
                print(
                    f"{name:14} {rps:8.0f} req/s  p99 {p99:>8}  "
                    f"= {rps / LIMITS_TRIVIAL_JSON_RPS:.2f} x LIMITS trivial-JSON ceiling"
                )
        finally:
            api.terminate()
            api.wait(15)


if __name__ == "__main__":
    main()
