"""Entry script: write the configured deterministic sample data into the landing folder.

python jobs/generate_sample_data.py [--conf-file conf/local.yaml]   (no Spark needed)
"""

import sys

from athlete_platform.cli import main

if __name__ == "__main__":
    sys.exit(main([*sys.argv[1:], "generate"]))
