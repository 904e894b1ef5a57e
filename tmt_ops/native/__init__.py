"""Native backend: services as host processes, started detached with run records, stopped by proven identity.
The backend itself is native/backend.py."""
