"""UCF (Yan et al., ICCV 2023): registered as ``ucf`` by :mod:`detectors.ucf.detector`."""
