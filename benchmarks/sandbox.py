"""Sandbox overhead: one-shot `print(1)` in bubblewrap vs plain `python -c`, and warm session calls.

    .venv/bin/python benchmarks/sandbox.py [--repeats 20] [--out benchmarks/results]

Targets (issue 7): one-shot overhead <= 150 ms over plain `python -c "print(1)"`, warm session
call <= 20 ms. Medians of `--repeats` runs after one warm-up each. The machine may be shared, so
the load average before and after is recorded next to the numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratchlab.lab.atomic import atomic_write_json, atomic_write_text
from scratchlab.sandbox import Limits, Session, new_work_dir, run_code
from scratchlab.sandbox.policy import PYTHON_FLAGS, find_bwrap, probe

TARGET_ONESHOT_OVERHEAD_MS = 150.0
TARGET_WARM_CALL_MS = 20.0


def median_ms(fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up (page cache, lazy imports)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), times


def interleaved(fns, repeats: int) -> list[list[float]]:
    """Time each of `fns` `repeats` times, round-robin after one warm-up each; ms per call."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20, help="timed runs per measurement (median reported)")
    ap.add_argument("--out", default="benchmarks/results", help="folder for sandbox.json and sandbox.md")
    args = ap.parse_args()
    reason = probe()
    if reason:
        sys.exit(f"sandbox unavailable: {reason}")
    load_before = os.getloadavg()
    limits = Limits(timeout_s=60)
    with tempfile.TemporaryDirectory(prefix="scratchlab-bench-") as tmp:
        root = Path(tmp)

        def plain():
            subprocess.run([sys.executable, "-c", "print(1)"], check=True, capture_output=True)

        def plain_isolated():
            subprocess.run([sys.executable, *PYTHON_FLAGS, "-c", "print(1)"], check=True, capture_output=True)

        def oneshot():
            r = run_code("print(1)", new_work_dir(root), limits=limits)
            assert r.ok and r.stdout == "1\n", r

        # interleaved, so that the load of a shared machine hits all three alike
        samples = interleaved([plain, plain_isolated, oneshot], args.repeats)
        plain_all, iso_all, oneshot_all = samples
        plain_ms, plain_iso_ms, oneshot_ms = (statistics.median(x) for x in samples)

        session = Session(new_work_dir(root, "session"), limits=limits)
        t0 = time.perf_counter()
        session.start()
        session_start_ms = (time.perf_counter() - t0) * 1000
        session.run("x = 0")

        def warm_call():
            r = session.run("x += 1\nx")
            assert r.ok, r

        warm_ms, warm_all = median_ms(warm_call, args.repeats)
        numpy_ms, _ = median_ms(
            lambda: session.run("import numpy as np\nfloat(np.ones(1000).sum())"), args.repeats
        )
        session.close()
    load_after = os.getloadavg()
    overhead = oneshot_ms - plain_ms
    result = {
        "benchmark": "sandbox",
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "bwrap": subprocess.run(
                [find_bwrap(), "--version"], capture_output=True, text=True
            ).stdout.strip(),
            "euid": os.geteuid(),
        },  # fmt: skip
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "repeats": args.repeats,
        "plain_python_c_ms": round(plain_ms, 2),
        "plain_python_isolated_flags_ms": round(plain_iso_ms, 2),
        "oneshot_sandbox_ms": round(oneshot_ms, 2),
        "oneshot_overhead_ms": round(overhead, 2),
        "oneshot_overhead_vs_isolated_flags_ms": round(oneshot_ms - plain_iso_ms, 2),
        "session_start_ms": round(session_start_ms, 2),
        "warm_session_call_ms": round(warm_ms, 3),
        "warm_session_numpy_call_ms": round(numpy_ms, 3),
        "targets": {
            "oneshot_overhead_ms": TARGET_ONESHOT_OVERHEAD_MS,
            "warm_session_call_ms": TARGET_WARM_CALL_MS,
        },
        "meets_targets": {
            "oneshot_overhead": overhead <= TARGET_ONESHOT_OVERHEAD_MS,
            "warm_session_call": warm_ms <= TARGET_WARM_CALL_MS,
        },  # fmt: skip
        "samples_ms": {
            "plain": [round(t, 2) for t in plain_all],
            "oneshot": [round(t, 2) for t in oneshot_all],
            "warm_call": [round(t, 3) for t in warm_all],
        },  # fmt: skip
        "command": f"python benchmarks/sandbox.py --repeats {args.repeats}",
    }
    out = Path(args.out)
    atomic_write_json(out / "sandbox.json", result)
    md = f"""# Sandbox overhead

`{result["command"]}` on {result["date_utc"]} ({result["machine"]["cpus"]} CPUs, {result["machine"]["bwrap"]},
euid {result["machine"]["euid"]}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}: shared machine).
Medians of {args.repeats} runs after one warm-up; the three one-shot measurements are interleaved.

| measurement | median | target |
|---|---|---|
| plain `python -c "print(1)"` (venv interpreter, with site) | {plain_ms:.1f} ms | |
| plain `python -I -S -B -u -c "print(1)"` | {plain_iso_ms:.1f} ms | |
| sandboxed one-shot `print(1)` (`run_code`, incl. work folder + file scan) | {oneshot_ms:.1f} ms | |
| **one-shot overhead** (sandboxed - plain `python -c`) | **{overhead:.1f} ms** | <= {TARGET_ONESHOT_OVERHEAD_MS:.0f} ms |
| one-shot overhead vs the same interpreter flags (sandboxed - `python -I -S -B -u`) | {oneshot_ms - plain_iso_ms:.1f} ms | |
| session start (bwrap + interpreter ready) | {session_start_ms:.1f} ms | |
| **warm session call** (`x += 1; x`) | **{warm_ms:.2f} ms** | <= {TARGET_WARM_CALL_MS:.0f} ms |
| warm session call with numpy already imported | {numpy_ms:.2f} ms | |

The sandboxed interpreter starts with `-I -S` and appends the venv's site-packages itself, skipping
the venv's `site` processing (.pth files); that saving pays for part of the sandbox. The second
overhead row is the cost of the sandbox proper: bwrap's namespaces and mounts, the uid-map handshake
when run as root, rlimits, and the parent's pipes, watchdog and work-folder scan.
"""
    atomic_write_text(out / "sandbox.md", md)
    print(md)


if __name__ == "__main__":
    main()
