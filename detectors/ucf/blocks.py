"""UCF's building blocks (Yan et al., ICCV 2023): encoders with channel adjustment, the spe/sha split,
heads, the AdaIN conditional decoder, in-batch shuffles and the contrastive regularisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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
        """The backbone's feature map, its channels adjusted to the UCF width."""
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
        """The 1x1 convolution block."""
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
        """Class logits of the spatially pooled features (after dropout), and those features."""
        feat = x.mean(dim=(2, 3))
        return self.drop(self.mlp(feat)), feat


def adain(content: Tensor, style: Tensor, eps: float = 1e-5) -> Tensor:
    """Adaptive instance normalisation (Huang & Belongie, ICCV 2017): content normalised per sample and
    channel, then given the style's per-channel mean and standard deviation."""
    c_var, c_mean = torch.var_mean(content, dim=(2, 3), keepdim=True, correction=0)
    s_var, s_mean = torch.var_mean(style, dim=(2, 3), keepdim=True, correction=0)
    return (content - c_mean) / (c_var + eps).sqrt() * (s_var + eps).sqrt() + s_mean


def double_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    """Two 3x3 convolutions with ReLU (a decoder stage)."""
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
        """Reconstruct an image from content features, styled by the forgery features (AdaIN at each
        stage)."""
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
    """The triplet margin loss with the Euclidean distance."""
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
