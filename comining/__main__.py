"""``python -m comining`` (and ``torchrun -m comining``) run the command line."""

import sys

from comining.cli import main

sys.exit(main())
