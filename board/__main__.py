"""``python -m board ...`` is ``edgewatch image ...``."""

import sys

from edge.cli.main import main

sys.exit(main(["image", *sys.argv[1:]]))
