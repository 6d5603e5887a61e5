"""WebFrame: hello via ionet.web, Flask and bottle, and the split: ``python bench/web.py --help``."""

from ionet.bench.web import main

raise SystemExit(main())
