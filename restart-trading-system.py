#!/usr/bin/env python3
"""Restart the TMT trading system (native, docker or swarm). See README.md."""
from tmt_ops.cli.main import restart

if __name__ == "__main__":
    restart()
