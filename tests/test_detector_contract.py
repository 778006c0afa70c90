"""Contract tests run over EVERY registered detector: a new detector is tested the day it is registered.

The checks live in ``tests/detector_contract.py`` (:data:`~tests.detector_contract.CHECKS`), which the toy
detector of docs/EXTENDING.md also passes (``tests/test_extending.py``).
"""

from __future__ import annotations

import pytest

from detectors import list_detectors
from tests.detector_contract import CHECKS, check_id

NAMES = list_detectors()


@pytest.mark.parametrize("check", CHECKS, ids=check_id)
@pytest.mark.parametrize("name", NAMES)
def test_contract(name, check, tmp_path):
    check(name, tmp_path)
