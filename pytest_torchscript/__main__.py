"""``python -m pytest_torchscript merge ...``: see ``merge.py``."""

import sys

from .reporting.merge import main

sys.exit(main())
