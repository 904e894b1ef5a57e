"""Docker backend: the stack run by docker compose (v2, else v1), its state read from the engine. The backend
itself is compose/backend.py; docker-restart.py's own commands (logs, clean) are compose/ops.py."""
