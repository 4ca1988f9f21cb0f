"""Cost of one Argon2id hash at the configured parameters: what bounds sign-ins per core.

.venv/bin/python bench/password_hash.py [--memory-kib 65536] [--time-cost 3] [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from argon2 import PasswordHasher


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory-kib", type=int, default=65_536)
    parser.add_argument("--time-cost", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    hasher = PasswordHasher(time_cost=args.time_cost, memory_cost=args.memory_kib, parallelism=1)
    timings = []
    for _ in range(args.runs):
        began = time.perf_counter()
        hasher.hash("plum-Orbit-vessel-42-quietly")
        timings.append((time.perf_counter() - began) * 1000)
    median = statistics.median(timings)
    print(
        f"argon2id m={args.memory_kib} KiB t={args.time_cost} p=1: median {median:.1f} ms, "
        f"max {max(timings):.1f} ms over {args.runs} hashes "
        f"=> at most {1000 / median:.0f} sign-ins/s per core"
    )


if __name__ == "__main__":
    main()
