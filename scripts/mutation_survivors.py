"""Compare mutmut's results with the explained survivors: print every survivor, fail on unexplained ones.

Usage: mutation_survivors.py RESULTS EXPLAINED PATTERN...  (RESULTS is `mutmut results` output; EXPLAINED
is scripts/mutation-survivors.md, where each explained mutant is a list item starting with its name in
backticks; only mutants matching a PATTERN count.)
"""

from __future__ import annotations

import fnmatch
import re
import sys
from pathlib import Path


def main(results: Path, explained_file: Path, patterns: list[str]) -> int:
    outcomes: dict[str, str] = {}
    for line in results.read_text(encoding="utf-8").splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name and any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            outcomes[name] = status
    explained = set(re.findall(r"^- `([^`]+)`", explained_file.read_text(encoding="utf-8"), re.MULTILINE))
    # A mutant that makes a test hang past mutmut's time limit was caught too: the suite would not finish.
    survivors = sorted(name for name, status in outcomes.items() if status not in ("killed", "timeout"))
    timeouts = sorted(name for name, status in outcomes.items() if status == "timeout")
    for name in timeouts:
        print(f"caught (a test hung)  {name}")
    unexplained = [name for name in survivors if name not in explained]
    for name in survivors:
        print(f"{'explained  ' if name in explained else 'UNEXPLAINED'} {outcomes[name]:>10}  {name}")
    stale = sorted(name for name in explained if outcomes.get(name) == "killed")
    for name in stale:
        print(f"now killed (remove it from {explained_file.name}): {name}")
    print(f"{len(survivors)} of the mutants checked survived; {len(unexplained)} unexplained")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]))
