"""SelfBlendedImages' released checkpoints (mapooon/SelfBlendedImages, ``FFraw.tar`` / ``FFc23.tar``) -> ``sbi``.

The released training script saves ``{"model": Detector.state_dict(), "optimizer": ..., "epoch": ...}``
(``src/train_sbi.py``) and the inference scripts load ``torch.load(path)["model"]`` into
``src/inference/model.py``'s ``Detector``, whose only module is ``self.net =
EfficientNet.from_pretrained("efficientnet-b4", advprop=True, num_classes=2)``. Its state dict is therefore
``net.<efficientnet_pytorch B4>`` (``_conv_stem``, ``_bn0``, ``_blocks.0..31.*``, ``_conv_head``, ``_bn1``)
and the 2-way classifier ``net._fc.{weight,bias}`` (``[2, 1792]``, ``[2]``); probabilities are
``softmax(...)[:, 1]``.

Mapping to ours: ``net.<efficientnet_pytorch name>`` -> ``net.backbone.<timm name>``
(:mod:`detectors.timm_cnn.efficientnet_pytorch`), ``net._fc`` -> ``net.head.fc`` as ``w_fake - w_real``,
``b_fake - b_real`` (so ``sigmoid`` of our logit equals their ``softmax[:, 1]``). Nothing is dropped: any
other key, a missing key or a shape mismatch is refused with the keys named. The file is read with
``weights_only=True`` (its optimiser state holds tensors and numbers only).

The network is built as ``sbi``'s defaults: ``tf_efficientnet_b4`` (TensorFlow "same" padding; at the
released 380 px identical to efficientnet_pytorch's static padding computed for 380 px), inputs in [0, 1]
(mean 0, std 1) at 380 px, as ``src/inference`` feeds them.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from detectors.convert import Conversion, ConversionError, ReleasedWeights, StateDict, pop_head, strip_module
from detectors.timm_cnn.efficientnet_pytorch import efficientnet_pytorch_to_timm


def convert_sbi(state: Mapping[str, Tensor]) -> StateDict:
    """SelfBlendedImages ``Detector`` state dict -> our ``sbi`` detector's state dict."""
    what = "SelfBlendedImages checkpoint"
    s = strip_module(state)
    w, b = pop_head(s, ("net._fc.",), what)
    out, outside = efficientnet_pytorch_to_timm(s, "net.", what)
    if outside:
        raise ConversionError(
            f"{what}: {len(outside)} keys outside the released network 'net.', e.g. {sorted(outside)[:5]}"
        )
    out["net.head.fc.weight"], out["net.head.fc.bias"] = w, b
    return out


SBI_RELEASED = Conversion(
    convert_sbi,
    build={"pretrained": False},
    released=ReleasedWeights(
        "FFc23.tar",
        "https://drive.google.com/file/d/1X0-NYT8KPursLZZdxduRQju6E52hauV0/view",
        "FF++ c23 reals + self-blended images (mapooon/SelfBlendedImages README; FFraw.tar: FF++ raw)",
    ),
)
