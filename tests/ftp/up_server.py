"""FTP as ``ionet up`` serves it, alone: ``python -m tests.ftp.up_server [UP OPTIONS]``.

``ionet up`` gives every service one set of limits, built from the shared
engine options; this does the same with the FTP service's part
(``ionet.ftp.cli.up_endpoints``) only, moved to port 0 so that tests can run
side by side, and without the other services.  So a test can give the engine
tiny idle and first-bytes timeouts and watch what they do to FTP.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from ionet.core.server import serve
from ionet.ftp.cli import up_endpoints
from ionet.serve_options import add_data_dir, add_engine_options, limits_from_args


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    add_data_dir(parser)
    add_engine_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,  # shown if a test fails
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    endpoints = [dataclasses.replace(endpoint, port=0) for endpoint in up_endpoints(args)]
    return serve(endpoints, args.engine, limits_from_args(args),
                 announce=lambda line: print(line, flush=True))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
