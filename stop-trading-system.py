#!/usr/bin/env python3
"""Stop the natively running TMT trading system. See README.md."""
import sys
from tmt_ops.cli.stop import main
if __name__ == "__main__":
    sys.exit(main())
