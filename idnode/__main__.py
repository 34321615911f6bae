"""`python -m idnode …` is the `idnode` command."""

import sys

from idnode.cli import main

sys.exit(main())
