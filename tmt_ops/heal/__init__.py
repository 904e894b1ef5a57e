"""--heal: restart a managed service that stays down, as a person would with `restart --only`: the pure policy
(policy.py: which, when, how often) and the runner (runner.py: under the run lock, through operations.restart)."""
