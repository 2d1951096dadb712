"""Reliability suite (`make reliability`; a fast subset runs in `make test`): prints its ledger."""

from __future__ import annotations

from tests.reliability import ledger


def pytest_terminal_summary(terminalreporter):
    if ledger.ENTRIES:
        terminalreporter.section("reliability ledger")
        for line in ledger.table():
            terminalreporter.write_line(line)
