"""`python -m stargan` (and `torchrun -m stargan`) runs the command-line interface."""

import sys

from stargan.cli import main

sys.exit(main())
