"""Allows `python -m wa_devtunnel`."""

import sys

from wa_devtunnel.cli.main import main

sys.exit(main())
