import sys

from facewright.cli import main

sys.exit(main())
