import sys

from sandwich.cli import main

sys.exit(main())
