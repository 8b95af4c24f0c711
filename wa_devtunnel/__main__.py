"""Allows `python -m wa_devtunnel`."""

import sys

from wa_devtunnel.cli import main

sys.exit(main())
