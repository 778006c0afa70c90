"""A detector's resolved settings: what ``create_detector(name, **overrides)`` builds, without building it.

:meth:`detectors.base.Detector.resolve_settings` is the one place that splits overrides into recipe
settings and constructor (architecture) arguments and knows their defaults; the grid check, the planner
and the cell record all read a :class:`DetectorSettings`.

References. A detector whose released code trains or builds otherwise than its paper describes accepts
``reference``: :data:`PAPER` (the default: what the paper describes and its authors evidently intended)
or :data:`RELEASED` (the released code's effective behaviour, bugs included, so a user with the compute
can tell which one explains the published numbers). The reference chooses the base recipe
(``default_recipe`` or ``released_recipe``) and may set other constructor arguments
(``reference_arguments``, e.g. DeepfakeBench's EfficientNet build).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datamodules.errors import UserError
from detectors.recipe import Recipe

PAPER = "paper"
RELEASED = "released"
REFERENCES = (PAPER, RELEASED)


class UnknownSettingError(UserError, TypeError):
    """An override is neither a recipe setting nor a constructor argument of the detector."""

    hint = "the message lists the accepted keys (recipe settings: detectors/recipe.py; the rest: the constructor)"


@dataclass(frozen=True)
class DetectorSettings:
    """One detector's settings after overrides.

    Attributes:
        detector: registry name.
        paper_recipe: the class's ``default_recipe`` (the paper's).
        recipe: ``reference_recipe`` with the recipe overrides.
        arch_defaults: every constructor argument's default (architecture, weights, losses): the
            signature's, with the reference's ``reference_arguments`` over them.
        recipe_overrides: the overrides that are :class:`Recipe` fields, as given.
        arch_overrides: the overrides that are constructor arguments, as given.
        reference: :data:`PAPER` or :data:`RELEASED` (always :data:`PAPER` for a detector without one).
        reference_recipe: the reference's base recipe (``paper_recipe`` for :data:`PAPER`).
    """

    detector: str
    paper_recipe: Recipe
    recipe: Recipe
    arch_defaults: dict[str, Any]
    recipe_overrides: dict[str, Any]
    arch_overrides: dict[str, Any]
    reference: str = PAPER
    reference_recipe: Recipe | None = None

    @property
    def arch(self) -> dict[str, Any]:
        """Every constructor argument with the value the detector is built with."""
        return {**self.arch_defaults, **self.arch_overrides}

    def recipe_changes(self) -> dict[str, tuple[Any, Any]]:
        """Recipe settings that differ from the reference's, ``{name: (reference, used)}`` (see
        :meth:`Recipe.diff`): the overrides, never what the reference itself implies."""
        return self.recipe.diff(self.reference_recipe or self.paper_recipe)

    def reference_changes(self) -> dict[str, tuple[Any, Any]]:
        """What the reference changes in the paper's recipe, ``{name: (paper, reference)}``."""
        return (self.reference_recipe or self.paper_recipe).diff(self.paper_recipe)

    def overridden_defaults(self) -> dict[str, Any]:
        """The default each overridden constructor argument would have had."""
        return {k: self.arch_defaults[k] for k in self.arch_overrides if k in self.arch_defaults}
