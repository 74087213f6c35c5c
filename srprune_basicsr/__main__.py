"""``python -m srprune_basicsr`` is the ``srprune`` command."""

import sys

from srprune_basicsr.cli import main

sys.exit(main())
