"""Entry script: write the configured deterministic sample data into the landing folder.

python jobs/generate_sample_data.py [--conf-file conf/local.yaml]   (no Spark needed)
"""

import argparse
import sys

from athlete_platform.config import load_settings
from athlete_platform.errors import PlatformError
from athlete_platform.pipelines import generate_sample_data

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="generate_sample_data")
    parser.add_argument("--conf-file")
    args = parser.parse_args()
    try:
        print(generate_sample_data(load_settings(args.conf_file)))
    except PlatformError as exc:
        print(f"generate_sample_data: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
