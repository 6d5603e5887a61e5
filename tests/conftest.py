"""Shared fixtures: the engine matrix, a TLS certificate, leak checks.

Every service test that takes the ``engine`` fixture runs once per engine in
``ionet.core.engines.ENGINES`` (uvicorn's parametrized ``http_protocol_cls``,
CPython's per-selector test classes): one suite, every implementation.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ionet.core.engines import ENGINES, get_engine

LOOP_ENGINES = ("select", "poll", "epoll", "asyncio", "uvloop")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine name in turn; the engine must be importable here."""
    name: str = request.param
    get_engine(name)  # a missing engine or extra is a failure, not a skip
    return name


@pytest.fixture(params=LOOP_ENGINES)
def loop_engine(request: pytest.FixtureRequest) -> str:
    """Each engine that multiplexes connections in one thread."""
    return str(request.param)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 'localhost' (PEM files)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key
