"""Entry script: create the catalog's schemas (idempotent) and list what exists.

spark-submit jobs/init_lakehouse.py [--conf-file conf/local.yaml]
"""

import sys

from athlete_platform.cli import main

if __name__ == "__main__":
    sys.exit(main([*sys.argv[1:], "init"]))
