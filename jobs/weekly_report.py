"""spark-submit entry: gold.athlete_weekly_report + HTML report per athlete.

spark-submit jobs/weekly_report.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml] (--help: the step's options)
"""

from athlete_platform.steps import job_main

if __name__ == "__main__":
    job_main("weekly_report")
