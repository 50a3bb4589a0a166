"""``python -m audb_publish``, see :mod:`audb_publish.cli`."""

import sys

from audb_publish.cli import main

sys.exit(main())
