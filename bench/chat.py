"""Chat fan-out, ionet beside ngircd: ``python bench/chat.py --help``."""

from ionet.bench.chat import main

raise SystemExit(main())
