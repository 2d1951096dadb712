"""The reliability suite's ledger: one row per scenario, printed as a table at the end of the run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

COLUMNS = ("scenario", "runs", "faults injected", "rows lost", "rows duplicated", "crashes", "time s")


@dataclass
class Entry:
    scenario: str
    runs: int = 0
    faults: int = 0
    lost: int = 0
    duplicated: int = 0
    crashes: int = 0
    seconds: float = 0.0

    def cells(self) -> tuple[str, ...]:
        return (
            self.scenario,
            str(self.runs),
            str(self.faults),
            str(self.lost),
            str(self.duplicated),
            str(self.crashes),
            f"{self.seconds:.0f}",
        )


ENTRIES: list[Entry] = []


@contextmanager
def scenario(name: str) -> Iterator[Entry]:
    """Record a scenario: the body fills in runs, faults, lost, duplicated; a crash counts as one."""
    entry = Entry(name)
    ENTRIES.append(entry)
    started = time.perf_counter()
    try:
        yield entry
    except Exception:
        entry.crashes += 1
        raise
    finally:
        entry.seconds = time.perf_counter() - started


def table() -> list[str]:
    """The ledger as aligned text lines (header first)."""
    rows = [COLUMNS, *(e.cells() for e in ENTRIES)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines
