"""spark-submit entry: champion time estimator drift and realised accuracy -> gold.model_monitoring.

spark-submit jobs/model_monitoring.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml] (--help: the step's options)
"""

from athlete_platform.steps import job_main

if __name__ == "__main__":
    job_main("model_monitoring")
