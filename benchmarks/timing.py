"""How every figure of `make bench` is taken: child processes timed with their
own peak RSS, contenders alternated round by round, medians. Also ROOT, the
checkout the sections measure, and THREADS, the cores they may use.

Imports the standard library alone.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THREADS = os.cpu_count() or 1

# Each child is started by this small launcher, not by the benchmark itself:
# Linux gives a new process the peak RSS of the process it was forked (or
# vforked) from, so a child of this process, which has imported torch, would
# report this process's ~270 MiB instead of its own peak.
_LAUNCHER = """
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:], cwd=sys.argv[1], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read()
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - start
print(json.dumps([wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), err.decode()[-2000:]]))
"""


def run_child(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, str(cwd), *cmd], capture_output=True, text=True, check=True)
    wall, rss, code, err = json.loads(out.stdout)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err}")
    return wall, rss


def alternate(contenders: dict, repeats: int, warmup: int = 1) -> dict[str, list]:
    """Run each contender in turn, `repeats` rounds after `warmup` rounds."""
    results = {name: [] for name in contenders}
    for round_ in range(warmup + repeats):
        for name, fn in contenders.items():
            value = fn()
            if round_ >= warmup:
                results[name].append(value)
    return results


def median(values):
    return statistics.median(values)
