"""DICT DEFINE queries per second, ionet vs dictd on dict-wn: ``python bench/dict.py --help``."""

from ionet.bench.dict import main

raise SystemExit(main())
