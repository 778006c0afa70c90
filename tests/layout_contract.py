"""The contract every dataset layout passes, as reusable checks ``check(layout, tmp_path)``.

``tests/test_layout_contract.py`` runs every check of :data:`CHECKS` over ``list_layouts()``, so a new layout
is held to it the day its ``_MODULES`` line is added; ``tests/test_extending.py`` runs the same checks on the
toy layout that docs/EXTENDING.md builds. What a layout finds in a correct download is layout-specific: each
adapter has its own fixture test reproducing the owner's structure (``tests/test_datasets.py``,
``tests/test_released_layouts.py``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from datamodules.datasets import Adapter, DatasetLayoutError, enumerate_dataset, get_adapter


def check_registered_with_its_expected_layout_documented(layout: str, tmp_path: Path) -> None:
    adapter = get_adapter(layout)
    assert isinstance(adapter, Adapter) and adapter.layout == layout
    doc = type(adapter).__doc__ or ""
    assert "Expected layout" in doc, (
        f"layout {layout!r}: the adapter's docstring must show its Expected layout"
    )


def check_enumerate_takes_root_dataset_and_defaulted_options(layout: str, tmp_path: Path) -> None:
    """``enumerate(root, dataset=None, **options)``: every option has a default, so a layout reads a
    download with no option given."""
    params = list(inspect.signature(get_adapter(layout).enumerate).parameters.values())
    assert [p.name for p in params[:2]] == ["root", "dataset"], layout
    assert params[1].default is None, f"layout {layout!r}: dataset defaults to None (then default_name)"
    no_default = [
        p.name for p in params[2:] if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.default is p.empty
    ]
    assert not no_default, f"layout {layout!r}: options without a default: {no_default}"


def check_missing_root_is_named(layout: str, tmp_path: Path) -> None:
    root = tmp_path / "not-there"
    with pytest.raises(DatasetLayoutError, match=f"layout {layout!r}: .*{re.escape(str(root))}"):
        enumerate_dataset(layout, root)


def check_empty_root_is_named(layout: str, tmp_path: Path) -> None:
    """An empty folder is a clear error naming the layout and what it looked for under the root, never an
    empty dataset."""
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(DatasetLayoutError, match=f"layout {layout!r}: .*{re.escape(str(root))}"):
        enumerate_dataset(layout, root)


def check_unknown_option_is_named(layout: str, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=rf"layout {layout!r} takes no option\(s\) \['no_such_option'\]"):
        enumerate_dataset(layout, tmp_path, no_such_option=1)


#: every check of the layout contract, in the order they run
CHECKS: tuple[Callable[[str, Path], None], ...] = (
    check_registered_with_its_expected_layout_documented,
    check_enumerate_takes_root_dataset_and_defaulted_options,
    check_missing_root_is_named,
    check_empty_root_is_named,
    check_unknown_option_is_named,
)


def check_id(check: Callable) -> str:
    return check.__name__.removeprefix("check_")
