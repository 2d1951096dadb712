"""spark-submit entry: the silver pipeline step for a run date.

spark-submit jobs/silver_pipeline.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml]
"""

from athlete_platform.jobs import run_job
from athlete_platform.pipelines import silver_pipeline

if __name__ == "__main__":
    run_job("silver_pipeline", silver_pipeline)
