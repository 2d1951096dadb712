"""spark-submit entry: create the catalog's schemas (idempotent).

spark-submit jobs/init_lakehouse.py [--conf-file conf/local.yaml]
"""

from athlete_platform.jobs import run_job
from athlete_platform.lakehouse.bootstrap import bootstrap_namespace


def main(context) -> None:
    bootstrap_namespace(context.spark, context.names)


if __name__ == "__main__":
    run_job("init_lakehouse", main, needs_run_date=False)
