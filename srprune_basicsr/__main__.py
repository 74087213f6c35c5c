"""``python -m srprune_basicsr`` is the ``srprune`` command."""

import sys

from srprune_basicsr.cli import main

if __name__ == '__main__':  # guarded: spawned worker processes re-import the main module
    sys.exit(main())
