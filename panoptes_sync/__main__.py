"""Entry point of ``python -m panoptes_sync``."""

import sys

from panoptes_sync.cli import main

sys.exit(main())
