"""`python -m mailconform`: the same command as the `mailconform` console script."""

import sys

from mailconform.cli import main

sys.exit(main(prog="python -m mailconform"))
