"""Evaluation of the assistant on the lakehouse `make run` built (conf/local.yaml, or --conf-file).

    .venv/bin/python bench/assistant_eval.py                  # 8 athletes x 6 questions = 48
    .venv/bin/python bench/assistant_eval.py --athletes 12 --race-source api   # with `athlete-platform serve` up

Per athlete: the load question as of the Sunday of the athlete's highest-load week, then form,
injury risk, marathon readiness, "what did I note about my legs" and one question it must refuse
(weather, sleep hours, another athlete's load, in turn) as of the athlete's latest feature day.

Expected facts are computed from the tables (`athlete_platform.assistant.evaluation`: read whole
with delta-rs into pandas, with pandas arithmetic: not the assistant's code path): the week's
load, its ratio to the previous 4 weeks' mean, the dates of the two largest sessions, the ACWR
value and its flag, CTL/ATL/TSB, monotony, the predicted marathon time. Prints:

- retrieval recall@5: share of the labelled relevant chunks in the search tool's top 5, over the
  questions that have some (labels: `note_topic` of each note chunk's text: heavy_legs for the load
  and legs questions, niggle for injury risk, within the searched dates; needs the
  `feature_store.document_chunks` table of `make run`'s embed-documents step);
- numeric faithfulness: share of the numbers in answers that equal a tool output (goal 100 %);
- facts covered: share of expected facts found in the answers (goal >= 90 %);
- refusal correctness: refusals on the questions to refuse, and answers on the others;
- p50/p95 latency of `ask` (goal p95 <= 2 s with the deterministic composer).
"""

from __future__ import annotations

import argparse
import sys
import time

from measure import machine_line

from athlete_platform.assistant.evaluation import evaluate
from athlete_platform.config import load_settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf-file")
    parser.add_argument("--athletes", type=int, default=8)
    parser.add_argument("--race-source", choices=["gold_table", "api"], default="gold_table")
    args = parser.parse_args()
    settings = load_settings(args.conf_file)
    settings = settings.model_copy(
        update={"assistant": settings.assistant.model_copy(update={"race_prediction_source": args.race_source})}
    )
    print(machine_line())
    print("\n".join(evaluate(settings, args.athletes).lines()))
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - started:.1f} s)")
    sys.exit(code)
