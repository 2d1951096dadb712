"""spark-submit entry: score athletes with the champion time estimator into gold.athlete_predictions.

spark-submit jobs/batch_inference.py --as-of YYYY-MM-DD            # latest row per athlete
spark-submit jobs/batch_inference.py --start YYYY-MM-DD --end YYYY-MM-DD   # every athlete-day
"""

from athlete_platform.jobs import job_parser, parse_run_date, run_job
from athlete_platform.pipelines import batch_inference


def main(context) -> None:
    args = context.args
    batch_inference(
        context,
        start=parse_run_date(args.start) if args.start else None,
        end=parse_run_date(args.end) if args.end else None,
        as_of=parse_run_date(args.as_of) if args.as_of else None,
    )


if __name__ == "__main__":
    parser = job_parser("batch_inference", needs_run_date=False)
    parser.add_argument("--as-of", help="score the latest feature row per athlete on or before this day")
    parser.add_argument("--start", help="first day of a range to score (with --end)")
    parser.add_argument("--end", help="last day of a range to score (inclusive)")
    run_job("batch_inference", main, needs_run_date=False, parser=parser)
