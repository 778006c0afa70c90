"""UCF: Yan, Zhang, Fan, Wu, "UCF: Uncovering Common Features for Generalizable Deepfake Detection", ICCV 2023.

Written from the paper and from our reading of the released implementation (DeepfakeBench
``training/detectors/ucf_detector.py``, non-commercial licence, not copied).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamodules.batch import Batch
from datamodules.spec import HALF, DataSpec
from detectors.base import DataSpecError, Detector, DetectorOutput
from detectors.feature_head import create_feature_backbone
from detectors.recipe import Recipe
from detectors.registry import register_detector


# ---------------------------------------------------------------------------------------------- building blocks
class UCFEncoder(nn.Module):
    """A timm CNN's last feature map followed by the 1x1 channel adjustment ``C -> feat_dim`` (+BN, ReLU).

    For ``legacy_xception`` the final ReLU of the backbone is removed: the released UCF adjusts the
    pre-activation output of Xception's last batch norm, and scoring its checkpoints needs the same graph.
    """

    def __init__(self, backbone: nn.Module, feat_dim: int, arch: str) -> None:
        super().__init__()
        if arch == "legacy_xception":
            backbone.act4 = nn.Identity()
        self.backbone = backbone
        self.adjust = nn.Sequential(
            nn.Conv2d(backbone.num_features, feat_dim, 1), nn.BatchNorm2d(feat_dim), nn.ReLU(inplace=True)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.adjust(self.backbone.forward_features(x))


class Conv1x1Block(nn.Module):
    """Three 1x1 convolutions with LeakyReLU between them: the spe/sha disentanglement branches."""

    def __init__(self, in_ch: int, hidden: int, out_ch: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, hidden, 1),
            nn.LeakyReLU(),
            nn.Conv2d(hidden, hidden, 1),
            nn.LeakyReLU(),
            nn.Conv2d(hidden, out_ch, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class UCFHead(nn.Module):
    """Global average pooling, ``Linear -> LeakyReLU -> Linear``, then dropout 0.2 on the outputs.

    Returns ``(logits, pooled_features)``; the pooled features feed the contrastive loss.
    """

    def __init__(self, in_f: int, hidden: int, out_f: int, drop: float = 0.2) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_f, hidden), nn.LeakyReLU(), nn.Linear(hidden, out_f))
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feat = x.mean(dim=(2, 3))
        return self.drop(self.mlp(feat)), feat


def adain(content: Tensor, style: Tensor, eps: float = 1e-5) -> Tensor:
    """Adaptive instance normalisation (Huang & Belongie, ICCV 2017): content normalised per sample and
    channel, then given the style's per-channel mean and standard deviation."""
    c_var, c_mean = torch.var_mean(content, dim=(2, 3), keepdim=True, correction=0)
    s_var, s_mean = torch.var_mean(style, dim=(2, 3), keepdim=True, correction=0)
    return (content - c_mean) / (c_var + eps).sqrt() * (s_var + eps).sqrt() + s_mean


def double_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class ConditionalDecoder(nn.Module):
    """The AdaIN-conditioned decoder that rebuilds an image from (forgery code, content code).

    Three stages: AdaIN(content <- statistics of the forgery code), x2 bilinear upsampling, dropout 0.3,
    double 3x3 convolution; the forgery code goes through the same upsampling and convolutions so that its
    statistics follow the content's resolution. Widths ``d -> d/2 -> d/4 -> d/8`` (512 -> 64 in UCF), then a
    1x1 convolution to RGB, bilinear upsampling to the image size and tanh (images are in [-1, 1]).
    """

    def __init__(self, feat_dim: int, drop: float = 0.3) -> None:
        super().__init__()
        if feat_dim % 8:
            raise ValueError(f"ConditionalDecoder needs feat_dim divisible by 8, got {feat_dim}")
        d = feat_dim
        self.up3 = double_conv(d, d // 2)
        self.up2 = double_conv(d // 2, d // 4)
        self.up1 = double_conv(d // 4, d // 8)
        self.conv_last = nn.Conv2d(d // 8, 3, 1)
        self.drop = nn.Dropout(drop)

    def _up(self, x: Tensor) -> Tensor:
        return self.drop(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))

    def forward(self, forgery: Tensor, content: Tensor, out_size: tuple[int, int]) -> Tensor:
        x, s = content, forgery
        x = self.up3(self._up(adain(x, s)))
        s = self.up3(self._up(s))
        x = self.up2(self._up(adain(x, s)))
        s = self.up2(self._up(s))
        x = self.up1(self._up(adain(x, s)))
        x = F.interpolate(self.conv_last(x), size=out_size, mode="bilinear", align_corners=True)
        return torch.tanh(x)


def shuffle_within_groups(groups: Tensor) -> Tensor:
    """A random permutation index that maps every position to a position of the same group.

    ``out[i]`` has ``groups[out[i]] == groups[i]``; uses the torch RNG (reproducible under a seed), no
    Python ``random`` and no host synchronisation.
    """
    # group ids are small integers: float32 keys are exact for them and work on every device
    keys = groups.to(torch.float32) * 2.0 + torch.rand(groups.shape, device=groups.device)
    random_order = torch.argsort(keys)  # grouped, random inside each group
    stable_order = torch.argsort(groups, stable=True)  # grouped, original order inside each group
    out = torch.empty_like(stable_order)
    out[stable_order] = random_order
    return out


def triplet(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float) -> Tensor:
    return F.triplet_margin_loss(anchor, positive, negative, margin=margin, p=2.0)


def contrastive_loss(common: Tensor, specific: Tensor, method_id: Tensor, margin: float) -> Tensor:
    """UCF's contrastive regularisation on a paired batch ``[reals; fakes]``.

    Common features: each real is pulled to a shuffled real and pushed from a shuffled fake, and vice versa.
    Specific features: anchors are shuffled among samples of the SAME method; each real's negative is a
    fake's anchor and vice versa. Four triplet-margin terms, summed.
    """
    half = common.shape[0] // 2
    halves = (torch.arange(common.shape[0], device=common.device) >= half).long()
    c_anchor = common[shuffle_within_groups(halves)]
    real_c, fake_c = common[:half], common[half:]
    loss = triplet(real_c, c_anchor[:half], c_anchor[half:], margin)
    loss = loss + triplet(fake_c, c_anchor[half:], c_anchor[:half], margin)
    s_anchor = specific[shuffle_within_groups(method_id)]
    real_s, fake_s = specific[:half], specific[half:]
    loss = loss + triplet(real_s, s_anchor[:half], s_anchor[half:], margin)
    loss = loss + triplet(fake_s, s_anchor[half:], s_anchor[:half], margin)
    return loss


# ---------------------------------------------------------------------------------------------- the detector
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

    Recipe (``default_recipe``): Adam lr 2e-4, weight decay 5e-4, 16 pairs (32 images) per batch, 5 epochs,
    32 frames per video, 256 px, mean = std = 0.5, augmentation on: DeepfakeBench
    ``training/config/detector/ucf.yaml``, trained on FF++ c23 DF, F2F, FS, NT (``num_methods=4``).

    Deviations, all deliberate:
    * The in-batch shuffles use the torch RNG (reproducible under ``seed_everything``) and the ACTUAL batch
      size; the released code uses Python ``random`` and the configured batch size (wrong on a short last
      batch).
    * AdaIN uses the population variance (the released code: unbiased), so a 1x1 feature map cannot give NaN.
    * The decoder's last upsampling goes to the input size (x4 for stride-32 encoders at any input size).
    * The four decoder passes run as one batched pass (identical result: the decoder has no batch norm).
    * Dropout sits after the heads' last Linear, as in the released implementation (the paper gives no
      position); it only acts in training.
    """

    default_recipe = Recipe(
        optimizer="adam",
        lr=2e-4,
        weight_decay=5e-4,
        betas=(0.9, 0.999),
        epochs=5,
        batch_size=32,
        eval_batch_size=32,
        frames_train=32,
        frames_test=32,
        augment=True,
        source="Yan et al. ICCV 2023; DeepfakeBench training/config/detector/ucf.yaml (16 pairs, 5 epochs)",
    )
    tiny_config: ClassVar[dict[str, Any]] = {
        "encoder_arch": "test_byobnet",
        "pretrained": False,
        "feat_dim": 32,
        "input_size": 64,
    }

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
        **recipe: Any,
    ) -> None:
        super().__init__(**recipe)
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
        image = batch.image
        if not self.training:  # inference: common branch only
            cls_sha, feat_sha = self.head_sha(self.block_sha(self.encoder_f(image)))
            return DetectorOutput(logits=cls_sha[:, 1] - cls_sha[:, 0], aux={"feat_common": feat_sha})
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
            aux={
                "cls_common": cls_sha,
                "cls_specific": cls_spe,
                "feat_common": feat_sha,
                "feat_specific": feat_spe,
                # [self reconstructions (n); cross reconstructions (n)], each aligned with its content image
                "reconstruction": recon,
            },
        )

    def loss(self, batch: Batch, out: DetectorOutput) -> dict[str, Tensor]:
        if "reconstruction" not in out.aux:  # an inference output: only the common head exists
            return {"loss": F.binary_cross_entropy_with_logits(out.logits, batch.label.float())}
        common = F.cross_entropy(out.aux["cls_common"], batch.label)
        specific = F.cross_entropy(out.aux["cls_specific"], batch.method_id)
        target = torch.cat([batch.image, batch.image])
        # the sum of the four per-pair mean L1 errors = 4 x the mean over the stacked reconstructions
        reconstruction = 4.0 * F.l1_loss(out.aux["reconstruction"], target)
        contrastive = contrastive_loss(
            out.aux["feat_common"], out.aux["feat_specific"], batch.method_id, self.margin
        )
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
