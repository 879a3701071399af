"""``python -m geo.cli``."""

import sys

from geo.cli import app

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
