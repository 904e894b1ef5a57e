"""Simulated TMT trading-system services (stdlib only).

Run one with ``python -m tmt_sim SERVICE --port N [...]`` and the npm-like
wrapper with ``python -m tmt_sim.wrap -- COMMAND...``.  Importing this package
is cheap on purpose: the service must bind its port fast.
"""

SERVICES = ("orchestrator", "market-analysis", "execution-engine", "dashboard")

HEALTH_PATHS = {
    "orchestrator": "/health",
    "market-analysis": "/health",
    "execution-engine": "/health",
    "dashboard": "/api/health",
}

__all__ = ["SERVICES", "HEALTH_PATHS"]
