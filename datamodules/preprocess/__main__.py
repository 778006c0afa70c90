"""``python -m datamodules.preprocess ...`` (the parser lives in :mod:`datamodules.preprocess.cli`)."""

import sys

from datamodules.preprocess.cli import main

sys.exit(main())
