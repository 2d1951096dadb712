"""spark-submit entry: daily training-load features up to a run date (incremental).

spark-submit jobs/feature_pipeline.py --run-date YYYY-MM-DD [--full-refresh] [--conf-file conf/local.yaml]
"""

from athlete_platform.jobs import job_parser, run_job
from athlete_platform.pipelines import feature_pipeline

if __name__ == "__main__":
    parser = job_parser("feature_pipeline")
    parser.add_argument("--full-refresh", action="store_true", help="recompute every athlete from its first session")
    run_job(
        "feature_pipeline",
        lambda context: feature_pipeline(context, full_refresh=context.args.full_refresh),
        parser=parser,
    )
