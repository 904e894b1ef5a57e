#!/usr/bin/env python3
"""Manage the TMT stack with docker compose: restart, start, stop, status, logs, clean. See README.md."""
import sys
from tmt_ops.cli.docker import main
if __name__ == "__main__":
    sys.exit(main())
