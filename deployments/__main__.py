import sys

from .bootstrap import main

sys.exit(main())
