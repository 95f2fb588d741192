"""`python -m desk.cli ...` is `hearken ...`."""

import sys

from desk.cli.hearken import main

sys.exit(main())
