"""Entry point for ``python -m prioritiser``."""

from prioritiser.cli import main

raise SystemExit(main())
