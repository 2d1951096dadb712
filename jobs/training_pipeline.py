"""spark-submit entry: train, register and gate the time estimator for a run date.

spark-submit jobs/training_pipeline.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml]
"""

from athlete_platform.jobs import run_job
from athlete_platform.pipelines import training_pipeline

if __name__ == "__main__":
    run_job("training_pipeline", training_pipeline)
