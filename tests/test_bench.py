"""The benchmark script runs in quick mode and prints every row (its figures are not asserted: machines are noisy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent / "bench" / "bench.py"
NEEDS = ("postgresql",)  # its PostgreSQL rows start a server (tests/machine.py installs it where it can)
ROWS = (
    "1a", "1b", "1c", "2a", "2b", "2c", "2d", "2e", "2f", "3a", "3b", "3c", "3d", "4a", "4b", "4c", "5a", "5b", "5c",
    "5d", "6a", "6b", "7a", "7b", "7c", "8a",
)  # fmt: skip


def test_quick_benchmark_completes_and_prints_every_row() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=600, cwd=BENCH.parents[2]
    )
    assert run.returncode == 0, run.stdout + run.stderr
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in run.stdout.splitlines()]
    rows = [row for row in cells if len(row) == 5 and not set(row[0]) <= {"-"}]
    assert [row[0] for row in rows] == ["#", *ROWS], run.stdout
    assert [row[0] for row in rows if row[4] == "ERROR"] == [], run.stdout
