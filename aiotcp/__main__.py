"""``python -m aiotcp``."""

import sys

from aiotcp.cli import main

sys.exit(main())
