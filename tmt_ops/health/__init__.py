"""system-health: one concurrent report of services, infrastructure and host resources, and a monitor loop."""
