"""spark-submit entry: train + register the time estimator, promotion gate.

spark-submit jobs/training_pipeline.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml] (--help: the step's options)
"""

from athlete_platform.steps import job_main

if __name__ == "__main__":
    job_main("training_pipeline")
