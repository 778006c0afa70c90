"""``python -m benchmark.leaderboard``: the command-line entry of :mod:`benchmark.report.leaderboard`."""

import sys

from benchmark.report.leaderboard import main
from datamodules.errors import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main))
