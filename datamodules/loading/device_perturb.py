"""Test-time perturbation on the device: test workers only read, the batch is perturbed after transfer.

With ``ForgeryDataModule(perturb_on_device=True)`` and a test perturbation that has a device form
(:mod:`datamodules.media.perturb.device`: colour saturation, colour contrast, Gaussian blur, the
DeeperForensics "JPEG" resampling), a test dataset's batch holds the stored crops as uint8
``[B, 3, H, W]`` in ``image`` and the marker ``extra[PERTURB]``; the worker still paints the region masks
and resizes the forgery masks (a photometric distortion moves neither, so they are the CPU path's own).
The datamodule's ``on_after_batch_transfer`` then calls :class:`DevicePerturb`: the distortion, the
evaluation resize (OpenCV's ``INTER_AREA`` / ``INTER_LINEAR``, :func:`~datamodules.media.perturb.device.resize_u8`)
and the normalisation, on the batch's device.

Equal to the CPU path (:class:`datamodules.loading.transforms.FaceTransform`): the resize and the
normalisation, bit for bit on the tested images; the distortion up to float rounding order (a pixel may
differ by one grey level: at most a few in 10^4 pixels on the tested face, measured in the tests). The
random distortions, video compression, user perturbations and any non-identity ``CropView`` stay in the
worker.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from datamodules.batch import Batch
from datamodules.loading.device_augment import normalise
from datamodules.media.perturb import Perturbation
from datamodules.media.perturb.device import device_form, moves_to_device, resize_u8
from datamodules.spec import DataSpec

PERTURB = "perturb_on_device"  # Batch.extra key of a test batch still to be perturbed on its device


class DevicePerturb:
    """Perturb, resize and normalise a raw test batch on its device (module docstring)."""

    def __init__(self, spec: DataSpec, perturbation: Perturbation) -> None:
        form = device_form(perturbation)
        if form is None:
            raise ValueError(f"{perturbation.tag} has no device form (datamodules.media.perturb.device)")
        self.spec, self.perturbation = spec, perturbation
        self._form: Callable[[Tensor], Tensor] = form

    def image(self, crops: Tensor) -> Tensor:
        """uint8 ``[B, 3, H, W]`` stored crops -> the normalised ``[B, 3, S, S]`` model input."""
        x = self._form(crops.float())
        return normalise(resize_u8(x, self.spec.input_size), self.spec)

    def __call__(self, batch: Batch) -> Batch:
        """The batch with its model input made from the stored crops it carries."""
        batch.extra.pop(PERTURB)
        # bit-exact float32 on the device: no TF32 (convolutions and einsum would round to 10 bits)
        with _no_tf32():
            batch.image = self.image(batch.image)
        return batch


class _no_tf32:
    def __enter__(self) -> None:
        self._saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *exc: object) -> None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self._saved


def finish_perturb(batch: object, perturber: DevicePerturb | None) -> object:
    """``perturber(batch)`` for a test batch marked :data:`PERTURB`, the batch itself otherwise."""
    if perturber is None or not isinstance(batch, Batch) or PERTURB not in batch.extra:
        return batch
    return perturber(batch)


__all__ = ["PERTURB", "DevicePerturb", "finish_perturb", "moves_to_device"]
