"""spark-submit entry: landing folder -> bronze (new files only).

spark-submit jobs/bronze_ingestion.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml] (--help: the step's options)
"""

from athlete_platform.steps import job_main

if __name__ == "__main__":
    job_main("bronze_ingestion")
