"""Datasets, preprocessing, region masks, blended fakes and the LightningDataModule.

This package never imports a detector: detectors describe what they need with a ``DataSpec``
(``datamodules.spec``) and the datamodule delivers it.
"""

from datamodules.batch import FAKE, REAL, Batch, collate
from datamodules.media.regions import REGIONS
from datamodules.spec import DataSpec

__all__ = ["FAKE", "REAL", "REGIONS", "Batch", "DataSpec", "collate"]
