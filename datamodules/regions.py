"""Facial regions: the fixed order of region masks and landmarks -> masks.

``REGIONS`` is the one order used by every ``Batch.region_masks`` tensor and every region-aware model.
"""

from __future__ import annotations

REGIONS: tuple[str, ...] = ("eyes", "nose", "mouth", "forehead", "skin", "outside")
"""eyes = eyes + brows; skin = cheeks and jaw skin; outside = hair, neck, background."""
