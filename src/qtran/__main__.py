import sys

from qtran.cli import main

sys.exit(main())
