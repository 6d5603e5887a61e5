"""``python -m ionet`` is the ``ionet`` command."""

from ionet.cli import main

raise SystemExit(main())
