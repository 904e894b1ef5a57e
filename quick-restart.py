#!/usr/bin/env python3
"""Restart the TMT trading system in the mode that runs now, with health checks. See README.md."""
import sys
from tmt_ops.cli.quick_restart import main
if __name__ == "__main__":
    sys.exit(main())
