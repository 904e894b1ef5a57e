#!/usr/bin/env python3
"""Restart the TMT trading system with sensible defaults. See README.md."""
from tmt_ops.cli.main import quick_restart

if __name__ == "__main__":
    quick_restart()
