"""UCF: Yan, Zhang, Fan, Wu, "UCF: Uncovering Common Features for Generalizable Deepfake Detection", ICCV 2023.

Written from the paper and from our reading of the released implementation (DeepfakeBench
``training/detectors/ucf_detector.py``, non-commercial licence, not copied).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from datamodules.batch import Batch
from datamodules.spec import HALF, DataSpec
from detectors.base import DataSpecError, Detector, DetectorAux, DetectorOutput
from detectors.recipe import DEEPFAKEBENCH_CNN, deepfakebench_augmentation, released_variant
from detectors.registry import register_detector
from detectors.timm_cnn.blocks import create_feature_backbone
from detectors.ucf.blocks import (
    ConditionalDecoder,
    Conv1x1Block,
    UCFEncoder,
    UCFHead,
    contrastive_loss,
    shuffle_within_groups,
)
from detectors.ucf.deepfakebench import DEEPFAKEBENCH_UCF


# ---------------------------------------------------------------------------------------------- the detector
@dataclass
class UCFAux(DetectorAux):
    """UCF's aux: the common-branch features (inference) and, in training, everything its loss reads."""

    feat_common: Tensor | None = None  # [B, C] common (forgery-generic) features
    cls_common: Tensor | None = None  # [B, 2] common head logits (real, fake)
    cls_specific: Tensor | None = None  # [B, M+1] specific head logits (real, training methods)
    feat_specific: Tensor | None = None  # [B, C] specific features
    #: ``[2B, 3, H, W]``: self reconstructions (B) then cross reconstructions (B), each aligned with its
    #: content image
    reconstruction: Tensor | None = None


@register_detector("ucf")
class UCF(Detector):
    """UCF (Yan et al., ICCV 2023): disentangle common forgery features from method-specific ones.

    Network: two Xception encoders (``encoder_f`` forgery, ``encoder_c`` content), each ending with a 1x1
    convolution 2048 -> 512 (+BN, ReLU); the forgery feature is split by two 3-layer 1x1-conv blocks into a
    method-specific part ``f_spe`` and a common part ``f_sha`` (256 + 256 channels). ``head_sha`` (pool,
    Linear 256->512, LeakyReLU, Linear ->2, dropout 0.2) decides real/fake; ``head_spe`` (same shape,
    ``num_methods + 1`` outputs) predicts the manipulation method (0 = real). An AdaIN conditional decoder
    rebuilds the four self- and cross-combinations of content and forgery codes of the paired batch.

    Loss: ``CE(common) + 0.1 CE(specific) + 0.3 L_rec + 0.05 L_con`` where ``L_rec`` is the sum of the four
    L1 reconstruction errors (each image is compared with the image whose CONTENT it carries) and ``L_con``
    the triplet-margin contrastive regularisation (margin 3). With probability 0.7 per step, the common
    features are shuffled within the real half and within the fake half of the batch. Every term is logged
    (``train/common``, ``train/specific``, ``train/reconstruction``, ``train/contrastive``).

    Data: paired training batches ``[reals; fakes]`` of equal size with ``method_id`` (DataSpec
    ``paired=True, method_ids=True``); ``forward`` refuses anything else in training mode. Inference uses the
    forgery encoder, the common branch and ``head_sha`` only, and returns ``l_fake - l_real``, whose sigmoid is
    the paper's ``softmax[:, 1]``.

    Recipe (``default_recipe``): Adam lr 2e-4, weight decay 5e-4, 5 epochs, 32 frames per video, 256 px,
    mean = std = 0.5, augmentation on with the config's ``data_aug`` block: DeepfakeBench
    ``training/config/detector/ucf.yaml``, trained on FF++ c23 DF, F2F, FS, NT (``num_methods=4``).
    Batch: ``train_batchSize: 16`` counts PAIRS there (``pairDataset`` yields one fake and one random real
    per item and its ``collate_fn`` concatenates ``[reals; fakes]``), so a step sees 32 images; our
    ``batch_size`` counts images, hence 32.

    ``reference="released"``: 6 epochs (``training/train.py`` loops ``range(start_epoch, nEpochs + 1)``)
    and albumentations 1.1.0's arithmetic; the network is the same.

    Deviations, all deliberate:
    * The in-batch shuffles use the torch RNG (reproducible under ``seed_everything``); the released code
      draws them with Python ``random``. Both shuffle within the halves of the actual batch
      (``bs = f_share.size(0)``).
    * AdaIN uses the population variance (the released code: unbiased), so a 1x1 feature map cannot give NaN.
    * The decoder's last upsampling goes to the input size (x4 for stride-32 encoders at any input size).
    * The four decoder passes run as one batched pass (identical result: the decoder has no batch norm).
    * Dropout sits after the heads' last Linear, as in the released implementation (the paper gives no
      position); it only acts in training.
    """

    default_recipe = DEEPFAKEBENCH_CNN.with_overrides(
        epochs=5,
        # training/config/detector/ucf.yaml, data_aug
        augmentation=deepfakebench_augmentation(
            {
                "flip_prob": 0.5,
                "rotate_prob": 0.5,
                "rotate_limit": (-10, 10),
                "blur_prob": 0.5,
                "blur_limit": (3, 7),
                "brightness_prob": 0.5,
                "brightness_limit": (-0.1, 0.1),
                "contrast_limit": (-0.1, 0.1),
                "quality_lower": 40,
                "quality_upper": 100,
            }
        ),
        source="Yan et al. ICCV 2023; DeepfakeBench training/config/detector/ucf.yaml (16 pairs, 5 epochs)",
    )
    released_recipe = released_variant(
        default_recipe, 5, "DeepfakeBench ucf.yaml run by training/train.py: nEpochs 5 -> 6 epochs"
    )
    tiny_config: ClassVar[dict[str, Any]] = {
        "encoder_arch": "test_byobnet",
        "pretrained": False,
        "feat_dim": 32,
        "input_size": 64,
    }
    converters = {"deepfakebench": DEEPFAKEBENCH_UCF}

    def __init__(
        self,
        encoder_arch: str = "legacy_xception",
        pretrained: bool = True,
        weights_path: str | Path | None = None,
        feat_dim: int = 512,
        num_methods: int = 4,
        input_size: int = 256,
        w_specific: float = 0.1,
        w_reconstruction: float = 0.3,
        w_contrastive: float = 0.05,
        margin: float = 3.0,
        shuffle_p: float = 0.7,
        reference: str = "paper",
        **recipe: Any,
    ) -> None:
        super().__init__(reference=reference, **recipe)
        if num_methods < 1:
            raise ValueError(f"UCF needs num_methods >= 1 (training manipulation methods), got {num_methods}")
        if feat_dim % 2:
            raise ValueError(f"UCF splits feat_dim in two halves; got odd feat_dim={feat_dim}")
        self.encoder_arch, self.feat_dim, self.num_methods = encoder_arch, feat_dim, num_methods
        self.w_specific, self.w_reconstruction, self.w_contrastive = (
            w_specific,
            w_reconstruction,
            w_contrastive,
        )
        self.margin, self.shuffle_p = margin, shuffle_p
        bb_f, loaded = create_feature_backbone(encoder_arch, pretrained, weights_path, global_pool="")
        # one hub attempt and one warning: the content encoder starts from the same weights
        bb_c, _ = create_feature_backbone(encoder_arch, False, None, global_pool="")
        if loaded:
            bb_c.load_state_dict(bb_f.state_dict())
        self.pretrained_loaded = loaded
        half = feat_dim // 2
        self.encoder_f = UCFEncoder(bb_f, feat_dim, encoder_arch)
        self.encoder_c = UCFEncoder(bb_c, feat_dim, encoder_arch)
        self.block_spe = Conv1x1Block(feat_dim, half, half)
        self.block_sha = Conv1x1Block(feat_dim, half, half)
        self.head_spe = UCFHead(half, feat_dim, num_methods + 1)
        self.head_sha = UCFHead(half, feat_dim, 2)
        self.decoder = ConditionalDecoder(feat_dim)
        self.data_spec = DataSpec(input_size=input_size, mean=HALF, std=HALF, method_ids=True, paired=True)

    # ------------------------------------------------------------------ checks
    def check_training_batch(self, batch: Batch) -> None:
        """Refuse a training batch that is not ``[reals; fakes]`` with valid ``method_id`` (clear errors).

        The happy path costs one host synchronisation (all conditions reduced into one flag).
        """
        if batch.method_id is None:
            raise DataSpecError("ucf needs batch.method_id (0 real, 1..num_methods) for its specific head")
        mid, lab = batch.method_id, batch.label
        n = lab.shape[0]
        expected = (torch.arange(n, device=lab.device) >= n // 2).long()
        bad_label = lab != expected
        bad_method = (mid < 0) | (mid > self.num_methods) | ((mid == 0) != (lab == 0))
        if n % 2 == 0 and n > 0 and not bool((bad_label | bad_method).any()):
            return
        if n % 2 or n == 0 or bool(bad_label.any()):
            raise DataSpecError(
                f"ucf trains on paired batches [reals; fakes] of equal size (DataSpec.paired), "
                f"got labels {lab.tolist()}"
            )
        bad = bad_method.nonzero().flatten().tolist()
        raise DataSpecError(
            f"ucf: method_id must be 0 for reals and 1..{self.num_methods} for fakes (num_methods="
            f"{self.num_methods}); bad rows {bad[:10]}: method_id {mid[bad[:10]].tolist()}, "
            f"labels {lab[bad[:10]].tolist()}, samples {[batch.sample_id[i] for i in bad[:3]]}"
        )

    # ------------------------------------------------------------------ forward
    def forward(self, batch: Batch) -> DetectorOutput:
        """UCF's forward (Yan et al., ICCV 2023): the common branch only at inference; in training also the
        specific branch and the cross reconstructions."""
        image = batch.image
        if not self.training:  # inference: common branch only
            cls_sha, feat_sha = self.head_sha(self.block_sha(self.encoder_f(image)))
            return DetectorOutput(logits=cls_sha[:, 1] - cls_sha[:, 0], aux=UCFAux(feat_common=feat_sha))
        self.check_training_batch(batch)
        forgery = self.encoder_f(image)
        n, half = image.shape[0], image.shape[0] // 2
        content = self.encoder_c(image)
        f_spe, f_sha = self.block_spe(forgery), self.block_sha(forgery)
        halves = (torch.arange(n, device=image.device) >= half).long()
        perm = torch.where(
            torch.rand((), device=image.device) < self.shuffle_p,
            shuffle_within_groups(halves),
            torch.arange(n, device=image.device),
        )
        f_sha = f_sha[perm]
        cls_spe, feat_spe = self.head_spe(f_spe)
        cls_sha, feat_sha = self.head_sha(f_sha)
        code = torch.cat([f_spe, f_sha], dim=1)
        swapped = torch.cat([code[half:], code[:half]])  # fake codes on real contents and vice versa
        recon = self.decoder(torch.cat([code, swapped]), torch.cat([content, content]), image.shape[-2:])
        return DetectorOutput(
            logits=cls_sha[:, 1] - cls_sha[:, 0],
            aux=UCFAux(
                cls_common=cls_sha,
                cls_specific=cls_spe,
                feat_common=feat_sha,
                feat_specific=feat_spe,
                reconstruction=recon,
            ),
        )

    def loss(self, batch: Batch, out: DetectorOutput) -> dict[str, Tensor]:
        """UCF's loss: common and method-specific cross-entropy, reconstruction and contrastive terms,
        weighted."""
        aux = out.aux
        if not isinstance(aux, UCFAux) or aux.reconstruction is None:  # inference: only the common head
            return {"loss": F.binary_cross_entropy_with_logits(out.logits, batch.label.float())}
        common = F.cross_entropy(aux.cls_common, batch.label)
        specific = F.cross_entropy(aux.cls_specific, batch.method_id)
        target = torch.cat([batch.image, batch.image])
        # the sum of the four per-pair mean L1 errors = 4 x the mean over the stacked reconstructions
        reconstruction = 4.0 * F.l1_loss(aux.reconstruction, target)
        contrastive = contrastive_loss(aux.feat_common, aux.feat_specific, batch.method_id, self.margin)
        total = (
            common
            + self.w_specific * specific
            + self.w_reconstruction * reconstruction
            + self.w_contrastive * contrastive
        )
        return {
            "loss": total,
            "common": common,
            "specific": specific,
            "reconstruction": reconstruction,
            "contrastive": contrastive,
        }
