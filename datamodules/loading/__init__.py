"""Serving preprocessed manifests to a detector: datasets, samplers, transforms, the LightningDataModule."""
