# usage: mkreg.py DIR [public-service...]   -> prints the registry path (free ports, unique stack)
import sys
sys.path[:0] = ["/work/wt-multinode/tests", "/work/wt-multinode"]
from pathlib import Path
from support import write_registry
d = Path(sys.argv[1]); d.mkdir(parents=True, exist_ok=True)
pub = sys.argv[2:]
def edit(data):
    for s in pub:
        data["services"][s]["public"] = True
print(write_registry(d, edit=edit))
