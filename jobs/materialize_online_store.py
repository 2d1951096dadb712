"""spark-submit entry: latest feature row per athlete -> the online store (Change Data Feed since its version).

spark-submit jobs/materialize_online_store.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml]
(--help: the step's options)
"""

from athlete_platform.steps import job_main

if __name__ == "__main__":
    job_main("materialize_online_store")
