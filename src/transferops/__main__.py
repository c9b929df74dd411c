import sys

from transferops.cli.main import main

sys.exit(main())
