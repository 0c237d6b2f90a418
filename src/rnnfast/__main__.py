"""``python -m rnnfast``: see rnnfast.cli."""
import sys

from rnnfast.cli import main

sys.exit(main())
