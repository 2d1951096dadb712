"""spark-submit entry: OPTIMIZE + VACUUM of every platform table (keeps referenced versions).

spark-submit jobs/table_maintenance.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml]
"""

from athlete_platform.steps import job_main

if __name__ == "__main__":
    job_main("table_maintenance")
