"""spark-submit entry: bronze -> silver athletes, sessions, races.

spark-submit jobs/silver_pipeline.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml] (--help: the step's options)
"""

from athlete_platform.steps import job_main

if __name__ == "__main__":
    job_main("silver_pipeline")
