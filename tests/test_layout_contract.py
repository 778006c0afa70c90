"""Contract tests run over EVERY dataset layout (``tests/layout_contract.py``): a new layout is held to them
the day it is registered, and the toy layout of docs/EXTENDING.md passes the same checks."""

from __future__ import annotations

import warnings

import pytest

from datamodules.datasets import list_layouts
from tests.layout_contract import CHECKS, check_id


@pytest.mark.parametrize("check", CHECKS, ids=check_id)
@pytest.mark.parametrize("layout", list_layouts())
def test_contract(layout, check, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a partial-download warning may precede the error
        check(layout, tmp_path)
