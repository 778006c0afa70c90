"""What a detector asks of the data (design card, "Contracts / Detector").

``DataSpec`` lives on the data side so that ``datamodules`` never imports a detector, while detectors
import it from here to declare their needs.
"""

from __future__ import annotations

from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class DataSpec:
    """Input contract of a detector.

    Attributes:
        input_size: square side of the image tensor fed to the detector.
        mean, std: per-channel normalisation of that tensor (RGB, 0-1 scale before normalising).
        region_masks: the batch must carry ``region_masks`` (needs landmarks in the manifest).
        forgery_masks: the batch must carry ``forgery_mask`` (dataset masks or blended fakes).
        method_ids: the batch must carry ``method_id`` (0 real, 1..M training methods).
        paired: training batches are ``[reals; fakes]`` of equal size (UCF).
        mask_size: side of the mask tensors; ``None`` means ``input_size``.
    """

    input_size: int = 256
    mean: tuple[float, float, float] = HALF
    std: tuple[float, float, float] = HALF
    region_masks: bool = False
    forgery_masks: bool = False
    method_ids: bool = False
    paired: bool = False
    mask_size: int | None = None

    def __post_init__(self) -> None:
        if self.input_size <= 0:
            raise ValueError(f"DataSpec.input_size must be positive, got {self.input_size}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"DataSpec.mean/std must be 3 values with std > 0, got {self.mean}, {self.std}")

    @property
    def mask_side(self) -> int:
        """Side of the region and forgery masks: ``mask_size``, or ``input_size`` when unset."""
        return self.mask_size or self.input_size
