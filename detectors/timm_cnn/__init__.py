"""timm CNN detectors: one class (:class:`~detectors.timm_cnn.detector.TimmCNN`, a timm feature extractor
with our fake-logit head) and its registered variants ``resnet34``, ``xception``, ``efficientnet_b4``
(:mod:`detectors.timm_cnn.variants`); building blocks in :mod:`detectors.timm_cnn.blocks`, DeepfakeBench
checkpoint conversion in :mod:`detectors.timm_cnn.deepfakebench`."""
