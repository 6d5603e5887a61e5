"""The examples in the dictionary modules' docstrings are true."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["ionet.dict.keys", "ionet.dict.cedict", "ionet.dict.rfc2229",
                                  "ionet.dict.importers.dictd", "ionet.dict.importers.lines"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
