"""FLOPs per image of every detector's inference forward and training step, counted, not guessed.

``torch.utils.flop_counter.FlopCounterMode`` counts the matmuls and convolutions of one real call
(random init, the detector's default input size = its paper's, batch of one real + one fake so paired
detectors see a valid training batch). Two corrections to the stock counter:

* attention runs through the MATH kernel of ``scaled_dot_product_attention`` so its matmuls are
  counted on CPU (the fused CPU kernel has no formula);
* torch's ``convolution_backward`` formula counts a grouped (depthwise) convolution as a dense one,
  ``groups`` times too many FLOPs (64x for a 64-channel depthwise 3x3; Xception, EfficientNet and UCF
  are full of them). We count each requested gradient (input, weight) as one forward of that
  convolution, which is exact for any ``groups`` (``w_shape`` already holds ``C_in / groups``).

The training step is COUNTED (train-mode forward + loss + backward), not taken as 3x the forward: frozen
towers (Forensics Adapter, SFAM, CLIP linear) compute no weight gradients, so for them the step costs
far less than 3x, and UCF's training forward runs a decoder its inference does not. Both are reported,
with the 3x rule beside them as a check. Elementwise ops, norms and the optimiser update are not
counted (a few percent of a convolutional or transformer step).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from datamodules.batch import Batch
from datamodules.loading.synthetic import make_batch
from detectors import create_detector, get_detector_class, list_detectors


@dataclass(frozen=True)
class DetectorFlops:
    """Counted FLOPs per image (multiply-add = 2 FLOPs) and the recipe numbers the cost model needs."""

    detector: str
    input_size: int
    forward: float
    train_step: float
    trainable_params: int
    total_params: int
    epochs: int
    batch_size: int
    frames_train: int
    frames_test: int
    config: str = "paper defaults, random init"


def _conv_backward_flops(
    grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed, _output_padding, _groups,
    output_mask, out_shape=None, **kw
) -> int:  # fmt: skip
    one = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=transposed)
    return one * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def _counter() -> FlopCounterMode:
    return FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flops}
    )


def _batch(spec) -> Batch:
    """One real and one fake sample with every field ``spec`` asks for (FLOPs depend on shapes only)."""
    return make_batch(spec, n=2)


def count(name: str, tiny: bool = False) -> DetectorFlops:
    """Count one detector (``tiny``: its ``tiny_config``, for smoke runs; the numbers are then meaningless)."""
    overrides = dict(get_detector_class(name).tiny_config) if tiny else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random init is the point here
        det = create_detector(name, **overrides)
    spec = det.data_spec
    batch = _batch(spec)
    n = len(batch)
    with contextlib.ExitStack() as stack:
        stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        det.eval()
        with torch.no_grad(), _counter() as fc:
            det(batch)
        forward = fc.get_total_flops() / n
        det.train()
        with _counter() as fc:
            out = det(batch)
            det.loss(batch, out)["loss"].backward()
        train = fc.get_total_flops() / n
    r = det.recipe
    params = list(det.parameters())
    return DetectorFlops(
        detector=name,
        input_size=spec.input_size,
        forward=forward,
        train_step=train,
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_params=sum(p.numel() for p in params),
        epochs=r.epochs,
        batch_size=r.batch_size,
        frames_train=r.frames_train,
        frames_test=r.frames_test,
        config="tiny_config (smoke run)" if tiny else "paper defaults, random init",
    )


def count_all(tiny: bool = False, names: list[str] | None = None) -> list[DetectorFlops]:
    """Count every registered detector (one thread: the machine is shared, and FLOPs do not depend on it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [count(n, tiny) for n in (names or list_detectors())]
    finally:
        torch.set_num_threads(threads)
