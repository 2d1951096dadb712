"""spark-submit entry: the serving API's inference log files -> gold.online_inference_log.

spark-submit jobs/flush_inference_log.py --run-date YYYY-MM-DD [--conf-file conf/local.yaml]
"""

from athlete_platform.steps import job_main

if __name__ == "__main__":
    job_main("flush_inference_log")
