"""Compare every table of two lakehouses row for row (e.g. before and after a refactor).

    .venv/bin/python tools/compare_lakehouse.py BEFORE_DATA_DIR AFTER_DATA_DIR [--rel-tol 1e-9]

Reads the Delta tables under `<data_dir>/warehouse/<schema>.db/<table>` with delta-rs (no
Spark), drops the lineage columns that record who wrote a row and when, sorts by every
remaining column and compares: strings, dates, ints exactly, doubles within `--rel-tol`
(default 0: exactly). Exit 0 when every table matches.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from deltalake import DeltaTable

# Who wrote a row and when: differs between any two runs by design.
LINEAGE = {"_run_id", "run_id", "_ingested_at", "computed_at", "rejected_at", "scored_at"}


def tables_under(data_dir: Path) -> dict[str, Path]:
    warehouse = data_dir / "warehouse"
    return {
        f"{schema.name.removesuffix('.db')}.{table.name}": table
        for schema in sorted(warehouse.glob("*.db"))
        for table in sorted(schema.iterdir())
        if (table / "_delta_log").is_dir()
    }


def normalised(path: Path) -> pd.DataFrame:
    frame = DeltaTable(str(path)).to_pandas()
    frame = frame[[c for c in frame.columns if c not in LINEAGE]]
    for column in frame.columns:  # arrays (e.g. flags) compare as text
        if frame[column].map(lambda v: isinstance(v, list | np.ndarray)).any():
            frame[column] = frame[column].map(lambda v: "|".join(map(str, v)) if v is not None else None)
    return frame.sort_values(list(frame.columns), kind="stable", na_position="last").reset_index(drop=True)


def compare(before: pd.DataFrame, after: pd.DataFrame, rel_tol: float) -> list[str]:
    if list(before.columns) != list(after.columns):
        return [f"columns differ: {list(before.columns)} vs {list(after.columns)}"]
    if len(before) != len(after):
        return [f"{len(before)} rows before, {len(after)} after"]
    problems = []
    for column in before.columns:
        a, b = before[column], after[column]
        if pd.api.types.is_float_dtype(a) and pd.api.types.is_float_dtype(b):
            x, y = a.to_numpy(float), b.to_numpy(float)
            same = (
                np.isclose(x, y, rtol=rel_tol, atol=0.0, equal_nan=True)
                if rel_tol
                else (x == y) | (np.isnan(x) & np.isnan(y))
            )
            if not same.all():
                worst = np.nanmax(np.abs(x - y) / np.maximum(np.abs(x), 1e-300))
                problems.append(f"{column}: {int((~same).sum())} values differ (max relative {worst:.3g})")
        elif not a.equals(b):
            problems.append(f"{column}: {int((a.astype(str) != b.astype(str)).sum())} values differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rel-tol", type=float, default=0.0)
    args = parser.parse_args(argv)
    before, after = tables_under(args.before), tables_under(args.after)
    ok = True
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            print(f"{name:<45} only {'before' if name in before else 'after'}")
            ok = False
            continue
        a, b = normalised(before[name]), normalised(after[name])
        problems = compare(a, b, args.rel_tol)
        ok &= not problems
        print(f"{name:<45} {len(a):>7} rows  {'same' if not problems else 'DIFFERENT: ' + '; '.join(problems)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
