"""`python -m devhost start --app-dir DIR`: see devhost/cli.py."""

import sys

from devhost.cli import main

if __name__ == "__main__":
    sys.exit(main())
