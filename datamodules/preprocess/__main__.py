"""``python -m datamodules.preprocess ...`` (the parser lives in :mod:`datamodules.preprocess.cli`; user
errors are one line plus a hint, exit code 2: :func:`datamodules.errors.run_cli`)."""

import sys

from datamodules.errors import run_cli
from datamodules.preprocess.cli import main

sys.exit(run_cli(main))
