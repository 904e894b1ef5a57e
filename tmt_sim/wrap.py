"""npm-run-like wrapper: ``python -m tmt_sim.wrap -- COMMAND...``.

Models ``npm run dev`` -> ``sh -c`` -> server: the real server ends up a GRANDCHILD of this process.
On SIGTERM/SIGINT the wrapper exits at once WITHOUT forwarding the signal (the hostile case: only
signalling the whole process group stops the server).
"""

import os
import shlex
import signal
import subprocess
import sys


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        print("usage: python -m tmt_sim.wrap -- COMMAND...", file=sys.stderr)
        return 2
    if args[0] in ("python", "python3"):
        args[0] = sys.executable
    command = shlex.join(args)
    print("\n> tmt-dashboard@1.0.0 dev\n> %s\n" % command, flush=True)
    # Exit immediately, leaving the child (and grandchild) running.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(128 + signal.SIGTERM))
    signal.signal(signal.SIGINT, lambda *_: os._exit(128 + signal.SIGINT))
    child = subprocess.Popen(["/bin/sh", "-c", command + "; exit $?"])
    rc = child.wait()
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main())
