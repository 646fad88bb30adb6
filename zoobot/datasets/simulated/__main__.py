"""Entry point of ``python -m zoobot.datasets.simulated``."""

import sys

from zoobot.datasets.simulated.cli import main

sys.exit(main())
