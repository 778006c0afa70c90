"""A detector's resolved settings: what ``create_detector(name, **overrides)`` builds, without building it.

:meth:`detectors.base.Detector.resolve_settings` is the one place that splits overrides into recipe
settings and constructor (architecture) arguments and knows their defaults; the grid check, the planner
and the cell record all read a :class:`DetectorSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datamodules.errors import UserError
from detectors.recipe import Recipe


class UnknownSettingError(UserError, TypeError):
    """An override is neither a recipe setting nor a constructor argument of the detector."""

    hint = "the message lists the accepted keys (recipe settings: detectors/recipe.py; the rest: the constructor)"


@dataclass(frozen=True)
class DetectorSettings:
    """One detector's settings after overrides.

    Attributes:
        detector: registry name.
        paper_recipe: the class's ``default_recipe`` (the paper's).
        recipe: ``paper_recipe`` with the recipe overrides.
        arch_defaults: every constructor argument's signature default (architecture, weights, losses).
        recipe_overrides: the overrides that are :class:`Recipe` fields, as given.
        arch_overrides: the overrides that are constructor arguments, as given.
    """

    detector: str
    paper_recipe: Recipe
    recipe: Recipe
    arch_defaults: dict[str, Any]
    recipe_overrides: dict[str, Any]
    arch_overrides: dict[str, Any]

    @property
    def arch(self) -> dict[str, Any]:
        """Every constructor argument with the value the detector is built with."""
        return {**self.arch_defaults, **self.arch_overrides}

    def recipe_changes(self) -> dict[str, tuple[Any, Any]]:
        """Recipe settings that differ from the paper's, ``{name: (paper, used)}`` (see :meth:`Recipe.diff`)."""
        return self.recipe.diff(self.paper_recipe)

    def overridden_defaults(self) -> dict[str, Any]:
        """The default each overridden constructor argument would have had."""
        return {k: self.arch_defaults[k] for k in self.arch_overrides if k in self.arch_defaults}
