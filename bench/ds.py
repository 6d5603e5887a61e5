"""Benchmark ionet.ds against Python built-ins: ``python bench/ds.py --help``."""

from ionet.bench.ds import main

raise SystemExit(main())
