#!/usr/bin/env python3
"""Restart the TMT trading system (native or docker). See README.md."""
import sys
from tmt_ops.cli.restart import main
if __name__ == "__main__":
    sys.exit(main())
