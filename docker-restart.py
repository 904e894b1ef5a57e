#!/usr/bin/env python3
"""The TMT stack: restart, start, stop, status, logs, clean. See README.md."""
from tmt_ops.cli.main import docker

if __name__ == "__main__":
    docker()
