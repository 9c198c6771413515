"""``python -m engine.cli``: the same as the ``recon`` script."""

import sys

from engine.cli import main

sys.exit(main())
