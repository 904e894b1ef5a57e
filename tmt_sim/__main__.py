import sys

from tmt_sim.service import main

sys.exit(main())
