"""How long `emporium dev` takes from launch to ready, cold (empty data folder) and warm.

    .venv/bin/python bench/startup.py [--runs 3]

Cold: a new data folder, so PostgreSQL is initialised, migrated, and the demo catalog
loaded. Warm: the same folder again. Both on free ports of their own. The venv install that
`make dev` does on first use is not included; time `make dev` from a fresh clone for that.
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


def start_to_ready(data_dir: Path) -> tuple[float, float]:
    """(wall seconds until the banner, the banner's own figure)."""
    api, temporal, ui = _free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    env.update(
        EMPORIUM_DATA_DIR=str(data_dir),
        EMPORIUM_API_PORT=str(api),
        EMPORIUM_TEMPORAL_ADDRESS=f"127.0.0.1:{temporal}",
        EMPORIUM_TEMPORAL_UI_PORT=str(ui),
        EMPORIUM_LOG_LEVEL="WARNING",
    )
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout.fileno(), selectors.EVENT_READ)
    seen = b""
    try:
        while b"Press Ctrl-C" not in seen:
            if process.poll() is not None or time.monotonic() - began > 180:
                raise SystemExit(f"emporium dev did not become ready: {seen!r}")
            if selector.select(timeout=0.5):
                seen += os.read(process.stdout.fileno(), 65536)
        wall = time.monotonic() - began
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    match = re.search(rb"ready \(([\d.]+) s\)", seen)
    return wall, float(match.group(1)) if match else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="emporium-bench-") as folder:
            data = Path(folder) / "data"
            cold.append(start_to_ready(data)[0])
            warm.append(start_to_ready(data)[0])
    for name, values in (("cold", cold), ("warm", warm)):
        print(
            f"{name}: median {statistics.median(values):.2f} s, "
            f"min {min(values):.2f} s, max {max(values):.2f} s over {len(values)} runs"
        )


if __name__ == "__main__":
    main()
