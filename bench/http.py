"""HTTP: ionet beside uvicorn, gunicorn and nginx (wrk): ``python bench/http.py --help``."""

from ionet.bench.http import main

raise SystemExit(main())
