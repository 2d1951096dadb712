"""spark-submit entry: weekly report table + HTML pages for a run date.

spark-submit jobs/weekly_report.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml]
"""

from athlete_platform.jobs import run_job
from athlete_platform.pipelines import weekly_report

if __name__ == "__main__":
    run_job("weekly_report", weekly_report)
