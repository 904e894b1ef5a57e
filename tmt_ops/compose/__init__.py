"""Docker backend: the stack run by docker compose (v2, else v1), its state read from the engine (compose/backend.py,
which also serves docker-restart.py's status and logs)."""
