#!/usr/bin/env python3
"""Health of every TMT service, infrastructure component and host resource, at once. See README.md."""
from tmt_ops.cli.main import health

if __name__ == "__main__":
    health()
