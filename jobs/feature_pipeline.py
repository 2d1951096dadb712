"""spark-submit entry: silver -> feature_store.athlete_rolling_features (incremental).

spark-submit jobs/feature_pipeline.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml] (--help: the step's options)
"""

from athlete_platform.steps import job_main

if __name__ == "__main__":
    job_main("feature_pipeline")
