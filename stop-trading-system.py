#!/usr/bin/env python3
"""Stop the TMT trading system's services. See README.md."""
from tmt_ops.cli.main import stop

if __name__ == "__main__":
    stop()
