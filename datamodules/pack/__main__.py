"""``python -m datamodules.pack ...`` (the parser lives in :mod:`datamodules.pack.cli`)."""

import sys

from datamodules.pack.cli import main

sys.exit(main())
