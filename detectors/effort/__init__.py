"""Effort (Yan et al., ICML 2025): the detector (:mod:`.detector`), the SVD split (:mod:`.svd_residual`) and
the converters of its released checkpoints (:mod:`.released`)."""
