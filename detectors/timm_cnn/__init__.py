"""timm CNN detectors: one class (:class:`~detectors.timm_cnn.detector.TimmCNN`, a timm feature extractor
with our fake-logit head) and its registered variants ``resnet34``, ``xception``, ``efficientnet_b4``
(:mod:`detectors.timm_cnn.variants`) and ``sbi``, ``sbi_deepfakebench`` (:mod:`detectors.timm_cnn.sbi`);
building blocks in :mod:`detectors.timm_cnn.blocks`; checkpoint conversion from DeepfakeBench in
:mod:`detectors.timm_cnn.deepfakebench` and from SelfBlendedImages in :mod:`detectors.timm_cnn.sbi_release`
(``efficientnet_pytorch`` names: :mod:`detectors.timm_cnn.efficientnet_pytorch`)."""
