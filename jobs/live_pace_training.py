"""spark-submit entry: train + register the live pace coach, promotion gate per fraction-done bucket.

spark-submit jobs/live_pace_training.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml] (--help: the step's options)
"""

from athlete_platform.steps import job_main

if __name__ == "__main__":
    job_main("live_pace_training")
