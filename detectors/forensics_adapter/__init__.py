"""Forensics Adapter (Cui et al., CVPR 2025): registered as ``forensics_adapter`` by
:mod:`detectors.forensics_adapter.detector`."""
