"""spark-submit entry: batch inference into gold.athlete_predictions (as of the run date, or --start/--end).

spark-submit jobs/batch_inference.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml] (--help: the step's options)
"""

from athlete_platform.steps import job_main

if __name__ == "__main__":
    job_main("batch_inference")
