"""A simulated one-shot job (a database migration): ``python -m tmt_sim.job [--seconds S] [--exit-code N]``.

Prints what it does, works for S seconds, exits N (0: done).
"""

import argparse
import sys
import time


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tmt_sim.job", description="Simulated one-shot job")
    p.add_argument("--seconds", type=float, default=0.2)
    p.add_argument("--exit-code", type=int, default=0)
    args = p.parse_args(argv)
    print("migrating: applying 3 migrations", flush=True)
    time.sleep(args.seconds)
    if args.exit_code:
        print(f"FATAL: migration 0002 failed (exit {args.exit_code})", file=sys.stderr, flush=True)
    else:
        print("migrated: schema is up to date", flush=True)
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
