"""Echo on every engine, and idle-connection memory: ``python bench/engines.py --help``."""

from ionet.bench.engines import main

raise SystemExit(main())
