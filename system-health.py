#!/usr/bin/env python3
"""Health of every TMT service, infrastructure component and host resource, at once. See README.md."""
import sys
from tmt_ops.cli.health import main
if __name__ == "__main__":
    sys.exit(main())
