"""python -m tmt_ops COMMAND [ARGS]: tmt-ops (cli/main.py), as the systemd units run it."""

from tmt_ops.cli.main import tmt_ops

if __name__ == "__main__":
    tmt_ops()
