"""tmt-ops: start, stop, restart and health-check the TMT trading system."""

__version__ = "1.0.0"
