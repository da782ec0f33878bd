import sys

from failover.nemesis.run import main

sys.exit(main())
