"""spark-submit entry: the bronze ingestion step for a run date.

spark-submit jobs/bronze_ingestion.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml]
"""

from athlete_platform.jobs import run_job
from athlete_platform.pipelines import bronze_ingestion

if __name__ == "__main__":
    run_job("bronze_ingestion", bronze_ingestion)
