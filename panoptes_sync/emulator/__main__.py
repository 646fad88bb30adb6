"""``python -m panoptes_sync.emulator``: serve the local Panoptes emulator."""

import sys

from panoptes_sync.emulator.cli import main

sys.exit(main())
