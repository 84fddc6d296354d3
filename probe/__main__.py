"""`python -m probe`: the `probe` command, where its script is not on the PATH."""

import sys

from probe.cli import main

sys.exit(main())
