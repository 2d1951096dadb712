"""spark-submit entry: the streaming features job (bronze.session_events -> online store intraday fields).

spark-submit jobs/streaming_features.py [--trigger-s 1] [--available-now] [--conf-file conf/local.yaml]
Runs until stopped; with --available-now it processes the events posted so far and exits.
"""

import argparse
import sys

from athlete_platform.cli import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="streaming_features", description=__doc__.splitlines()[0])
    parser.add_argument("--conf-file")
    parser.add_argument("--master")
    known, rest = parser.parse_known_args()
    front = [f"--{k.replace('_', '-')}={v}" for k, v in vars(known).items() if v is not None]
    sys.exit(main([*front, "stream", *rest]))
