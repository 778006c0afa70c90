"""Forensics Adapter as RELEASED (OUC-VAS/ForensicsAdapter), written for the tests from its code's equations.

Nothing here reads our modules: the key names and shapes of :func:`released_state_dict` are derived from
``model/ds.py`` (module order ``clip_model, adapter, rec_attn_clip, masked_xray_post_process,
clip_post_process``), ``model/adapters/adapter.py``, ``model/attn.py``, ``model/layer.py``,
``model/clip/model.py`` and timm 0.6.12's ``VisionTransformer`` (what ``create_model("vit_tiny_patch16_224",
fc_norm=False, num_classes=0, embed_layer=PatchEmbed)`` registers; ``cls_token`` and ``norm`` deleted
afterwards); :func:`released_patch_labels` runs ``split_images_by_patch`` 's OpenCV calls on the float32
masks its loader returns; :func:`released_forward` is ``DS.forward`` in inference mode on such a state
dict, in plain ``torch.nn.functional``. Sizes are arguments so a tiny CLIP can stand in for ViT-L/14
(the released code hard-codes 14/16 grids, 16 heads and 768; here they follow the given sizes).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Sizes:
    """The released network's sizes (ViT-L/14 values in comments)."""

    clip_width: int = 64  # 1024
    clip_layers: int = 4  # 24
    clip_heads: int = 2  # 16
    clip_patch: int = 14  # 14
    clip_image: int = 56  # 224
    embed: int = 32  # 768
    text_width: int = 32  # 768
    text_layers: int = 2  # 12
    vocab: int = 100  # 49408
    context: int = 77  # 77
    width: int = 24  # 192 (ViT-Tiny)
    vit_heads: int = 3  # 3
    vit_blocks: int = 12  # 12 built, 8 run
    vit_patch: int = 16  # ViT-Tiny's own patch embedding (unused)
    pos_grid: int = 3  # 14
    patch: int = 8  # 16 (the adapter's patch_conv)
    queries: int = 8  # 128
    mlp_dim: int = 16  # 256
    mlp_out: int = 8  # 128
    bottleneck: int = 16  # 192

    @property
    def grid(self) -> int:
        return self.clip_image // self.clip_patch


def released_state_dict(z: Sizes, seed: int = 0) -> dict[str, Tensor]:
    """A state dict with the released checkpoint's exact key names and shapes (random values; the CLIP
    tensors in fp16 as ``clip.load``'s ``convert_weights`` leaves them; the shared visual tower registered
    a second time under ``rec_attn_clip``, the same tensors)."""
    g = torch.Generator().manual_seed(seed)

    def w(*shape: int, std: float = 0.05) -> Tensor:
        return torch.randn(*shape, generator=g) * std

    def ln(prefix: str, n: int) -> dict[str, Tensor]:
        return {f"{prefix}.weight": 1 + w(n), f"{prefix}.bias": w(n)}

    def lin(prefix: str, out: int, inp: int, *kernel: int) -> dict[str, Tensor]:
        return {f"{prefix}.weight": w(out, inp, *kernel, std=inp**-0.5), f"{prefix}.bias": w(out)}

    def bn(prefix: str, n: int) -> dict[str, Tensor]:
        return {
            **ln(prefix, n),
            f"{prefix}.running_mean": w(n),
            f"{prefix}.running_var": 0.5 + torch.rand(n, generator=g),
            f"{prefix}.num_batches_tracked": torch.tensor(7),
        }

    def resblock(prefix: str, d: int) -> dict[str, Tensor]:  # model/clip/model.py ResidualAttentionBlock
        return {
            f"{prefix}.attn.in_proj_weight": w(3 * d, d, std=d**-0.5),
            f"{prefix}.attn.in_proj_bias": w(3 * d),
            **lin(f"{prefix}.attn.out_proj", d, d),
            **ln(f"{prefix}.ln_1", d),
            **lin(f"{prefix}.mlp.c_fc", 4 * d, d),
            **lin(f"{prefix}.mlp.c_proj", d, 4 * d),
            **ln(f"{prefix}.ln_2", d),
        }

    W, D, Q = z.clip_width, z.width, z.queries
    visual = {
        "conv1.weight": w(W, 3, z.clip_patch, z.clip_patch, std=0.1),
        "class_embedding": w(W, std=W**-0.5),
        "positional_embedding": w(z.grid**2 + 1, W, std=W**-0.5),
        **ln("ln_pre", W),
        **{k: v for i in range(z.clip_layers) for k, v in resblock(f"transformer.resblocks.{i}", W).items()},
        **ln("ln_post", W),
        "proj": w(W, z.embed, std=W**-0.5),
    }
    visual = {k: v.half() for k, v in visual.items()}
    text = {
        **{
            k: v
            for i in range(z.text_layers)
            for k, v in resblock(f"transformer.resblocks.{i}", z.text_width).items()
        },
        "token_embedding.weight": w(z.vocab, z.text_width),
        "positional_embedding": w(z.context, z.text_width),
        **ln("ln_final", z.text_width),
        "text_projection": w(z.text_width, z.embed),
        "logit_scale": torch.tensor(4.6052),
    }
    sd: dict[str, Tensor] = {f"clip_model.visual.{k}": v for k, v in visual.items()}
    sd.update({f"clip_model.{k}": v.half() for k, v in text.items()})

    vit = {
        "pos_embed": w(1, z.pos_grid**2, D, std=0.02),
        "patch_embed.proj.weight": w(D, 3, z.vit_patch, z.vit_patch),
        "patch_embed.proj.bias": w(D),  # timm 0.6.12 passes bias=not pre_norm
        **ln("patch_embed.norm", D),  # their PatchEmbed builds a VT_LN it never calls
    }
    for i in range(z.vit_blocks):
        b = f"blocks.{i}"
        vit.update(
            {
                **ln(f"{b}.norm1", D),
                **lin(f"{b}.attn.qkv", 3 * D, D),
                **lin(f"{b}.attn.proj", D, D),
                **ln(f"{b}.norm2", D),
                **lin(f"{b}.mlp.fc1", 4 * D, D),
                **lin(f"{b}.mlp.fc2", D, 4 * D),
            }
        )
    sd.update({f"adapter.vit_model.{k}": v for k, v in vit.items()})
    sd["adapter.query_embed"] = w(1, Q, D, std=0.02)
    sd["adapter.query_pos_embed"] = w(1, Q, D, std=0.02)
    dec = "adapter.mask_decoder"
    for name, out, kernel in (("query_mlp", z.mlp_out, ()), ("xray_mlp", z.mlp_out, (1, 1))):
        sd.update(lin(f"{dec}.{name}.layers.0", z.mlp_dim, D, *kernel))
        sd.update(lin(f"{dec}.{name}.layers.1", z.mlp_dim, z.mlp_dim, *kernel))
        sd.update(lin(f"{dec}.{name}.layers.2", out, z.mlp_dim, *kernel))
    sd.update(lin(f"{dec}.attn_mlp.layers.0", z.mlp_dim, D, 1, 1))
    sd.update(lin(f"{dec}.attn_mlp.layers.1", z.mlp_dim, z.mlp_dim, 1, 1))
    sd.update(lin(f"{dec}.attn_mlp.layers.2", z.mlp_out * z.clip_heads, z.mlp_dim, 1, 1))
    sd[f"{dec}.bias_scaling.weight"] = 1 + w(1, 1)
    sd[f"{dec}.bias_scaling.bias"] = w(1)
    sd.update(ln("adapter.ln_pre", D))
    sd.update(lin("adapter.patch_conv", D, 3, z.patch, z.patch))

    for k, v in visual.items():  # RecAttnClip(self.clip_model.visual): vit, resblocks, ln_post, proj
        sd[f"rec_attn_clip.vit.{k}"] = v
        if k.startswith("transformer.resblocks."):
            sd[f"rec_attn_clip.resblocks.{k[len('transformer.resblocks.') :]}"] = v
        if k.startswith("ln_post."):
            sd[f"rec_attn_clip.{k}"] = v
    sd["rec_attn_clip.proj"] = visual["proj"]
    sd["rec_attn_clip.intra_scale"] = torch.zeros(1)
    sd.update(lin("rec_attn_clip.clip_intra_blocks.0.conv_first", z.bottleneck, W, 1))
    sd.update(lin("rec_attn_clip.clip_intra_blocks.0.conv_second", W, z.bottleneck, 1))

    post = "masked_xray_post_process.process"
    sd.update(lin(f"{post}.0", Q // 2, Q, 3, 3))
    sd.update(bn(f"{post}.1", Q // 2))
    sd.update(lin(f"{post}.3", Q // 4, Q // 2, 3, 3))
    sd.update(bn(f"{post}.4", Q // 4))
    sd.update(lin(f"{post}.6", 1, Q // 4, 1, 1))
    sd[f"{post}.7.weight"] = w(1, 1, z.patch, z.patch, std=0.3)  # ConvTranspose2d: [in, out, k, k]
    sd[f"{post}.7.bias"] = w(1)
    first = "clip_post_process.first_process"
    sd.update(lin(f"{first}.0", Q // 2, Q, 3))
    sd.update(bn(f"{first}.1", Q // 2))
    sd.update(lin(f"{first}.3", Q // 4, Q // 2, 3))
    sd.update(bn(f"{first}.4", Q // 4))
    sd.update(lin(f"{first}.6", 1, Q // 4, 3))
    second = "clip_post_process.second_process"
    sd.update(lin(f"{second}.0", z.embed // 2, z.embed))
    sd.update(lin(f"{second}.2", z.embed // 4, z.embed // 2))
    sd.update(lin(f"{second}.4", 2, z.embed // 4))
    return sd


# ---------------------------------------------------------------------------------------------- patch labels
def released_patch_labels(mask255: np.ndarray, patch: int, resize: int | None = None) -> tuple[list, list]:
    """``split_images_by_patch(mask, patch, mode, need_boundary=True)`` on the loader's float32 0-255 mask."""
    m = np.asarray(mask255, np.float32)
    if resize is not None:  # mode='resize'
        m = cv2.resize(m, (resize, resize))
    _, b = cv2.threshold(m, 40, 255, cv2.THRESH_BINARY)
    labels, bounds = [], []
    for i in range(b.shape[0] // patch):
        for j in range(b.shape[1] // patch):
            p = b[i * patch : (i + 1) * patch, j * patch : (j + 1) * patch]
            nz = cv2.findNonZero(p)
            white = nz.shape[0] if nz is not None else 0
            nz = cv2.findNonZero(cv2.bitwise_not(p))
            black = nz.shape[0] if nz is not None else 0
            total = black + white
            labels.append(1 if white / total > 0.1 else 0)
            bounds.append(1 if (white / total > 0.1 and white != total) else 0)
    return labels, bounds


def stated_patch_labels(mask255: np.ndarray, patch: int) -> tuple[list, list]:
    """The rule as the paper and the code's comments state it: fake pixels over the patch's pixels."""
    b = np.asarray(mask255, np.float32) > 40
    labels, bounds = [], []
    for i in range(b.shape[0] // patch):
        for j in range(b.shape[1] // patch):
            frac = b[i * patch : (i + 1) * patch, j * patch : (j + 1) * patch].mean()
            labels.append(int(frac > 0.1))
            bounds.append(int(0.1 < frac < 1.0))
    return labels, bounds


# ---------------------------------------------------------------------------------------------- forward
def _ln(x: Tensor, sd: dict, p: str, eps: float) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[f"{p}.weight"], sd[f"{p}.bias"], eps)


def _attention(q: Tensor, k: Tensor, v: Tensor, heads: int, mask: Tensor | None) -> Tensor:
    n, t, d = q.shape
    q, k, v = (a.reshape(n, t, heads, d // heads).transpose(1, 2) for a in (q, k, v))
    att = q @ k.transpose(-1, -2) * (d // heads) ** -0.5
    if mask is not None:
        att = att + mask
    return (att.softmax(-1) @ v).transpose(1, 2).reshape(n, t, d)


def _clip_block(x: Tensor, sd: dict, p: str, heads: int, mask: Tensor | None) -> Tensor:
    """OpenAI CLIP's ResidualAttentionBlock (nn.MultiheadAttention, QuickGELU), tokens ``[N, T, W]``."""
    h = _ln(x, sd, f"{p}.ln_1", 1e-5)
    q, k, v = F.linear(h, sd[f"{p}.attn.in_proj_weight"], sd[f"{p}.attn.in_proj_bias"]).chunk(3, -1)
    a = _attention(q, k, v, heads, mask)
    x = x + F.linear(a, sd[f"{p}.attn.out_proj.weight"], sd[f"{p}.attn.out_proj.bias"])
    h = F.linear(_ln(x, sd, f"{p}.ln_2", 1e-5), sd[f"{p}.mlp.c_fc.weight"], sd[f"{p}.mlp.c_fc.bias"])
    h = h * torch.sigmoid(1.702 * h)
    return x + F.linear(h, sd[f"{p}.mlp.c_proj.weight"], sd[f"{p}.mlp.c_proj.bias"])


def _vit_block(x: Tensor, sd: dict, p: str, heads: int) -> Tensor:
    """timm 0.6.12 ``Block`` (LayerNorm eps 1e-6, exact GELU)."""
    h = _ln(x, sd, f"{p}.norm1", 1e-6)
    q, k, v = F.linear(h, sd[f"{p}.attn.qkv.weight"], sd[f"{p}.attn.qkv.bias"]).chunk(3, -1)
    x = x + F.linear(_attention(q, k, v, heads, None), sd[f"{p}.attn.proj.weight"], sd[f"{p}.attn.proj.bias"])
    h = F.gelu(F.linear(_ln(x, sd, f"{p}.norm2", 1e-6), sd[f"{p}.mlp.fc1.weight"], sd[f"{p}.mlp.fc1.bias"]))
    return x + F.linear(h, sd[f"{p}.mlp.fc2.weight"], sd[f"{p}.mlp.fc2.bias"])


def _mlp(x: Tensor, sd: dict, p: str, conv: bool) -> Tensor:
    for i in range(3):
        wt, b = sd[f"{p}.layers.{i}.weight"], sd[f"{p}.layers.{i}.bias"]
        x = F.conv2d(x, wt, b) if conv else F.linear(x, wt, b)
        x = F.relu(x) if i < 2 else x
    return x


def _bn(x: Tensor, sd: dict, p: str) -> Tensor:
    return F.batch_norm(
        x,
        sd[f"{p}.running_mean"],
        sd[f"{p}.running_var"],
        sd[f"{p}.weight"],
        sd[f"{p}.bias"],
        False,
        0.0,
        1e-5,
    )


def released_forward(
    sd: dict[str, Tensor],
    fusions: dict[int, tuple[Tensor, Tensor, Tensor, Tensor]],
    image: Tensor,
    if_boundary: Tensor,
    z: Sizes,
    fusion_map: dict[int, int],
    intra_after: int,
) -> tuple[Tensor, Tensor]:
    """``DS.forward(data_dict, inference=True)``: ``(cls [N, 2], xray_pred [N, 1, S, S])``.

    ``fusions``: adapter block -> ``(ln_weight, ln_bias, conv_weight [D, W], conv_bias)`` of the
    ``Fusion`` the released ``Adapter.fuse`` would build for that call. ``if_boundary`` ``[N, L]``.
    ``intra_after``: the released ``i == 6`` (0-based) is the 1-based block 7 of 24.
    """
    sd = {k: v.float() for k, v in sd.items()}
    n, L, Q, W = image.shape[0], z.grid**2, z.queries, z.clip_width
    # CLIP pass 1: clip_model.extract_features(F.interpolate(image, 224), fusion_map.values())
    v = "clip_model.visual"
    x = F.interpolate(image, size=(z.clip_image, z.clip_image), mode="bilinear", align_corners=False)
    x = F.conv2d(x, sd[f"{v}.conv1.weight"], stride=z.clip_patch).reshape(n, W, -1).permute(0, 2, 1)
    x = torch.cat([sd[f"{v}.class_embedding"] + torch.zeros(n, 1, W), x], dim=1)
    x = _ln(x + sd[f"{v}.positional_embedding"], sd, f"{v}.ln_pre", 1e-5)
    feats = {0: x[:, 1:], "cls": x[:, 0]}
    for idx in range(1, max(fusion_map.values()) + 1):
        x = _clip_block(x, sd, f"{v}.transformer.resblocks.{idx - 1}", z.clip_heads, None)
        if idx in fusion_map.values():
            feats[idx] = x[:, 1:]
    # Adapter.forward
    a = F.conv2d(image, sd["adapter.patch_conv.weight"], sd["adapter.patch_conv.bias"], stride=z.patch)
    a = a.reshape(n, z.width, -1).permute(0, 2, 1)
    pos = sd["adapter.vit_model.pos_embed"].permute(0, 2, 1).reshape(1, z.width, z.pos_grid, z.pos_grid)
    pos = F.interpolate(pos, size=(z.grid, z.grid), mode="bilinear", align_corners=False)
    pos = pos.reshape(1, z.width, L).permute(0, 2, 1)
    pos = torch.cat([sd["adapter.query_pos_embed"], pos], dim=1)
    a = torch.cat([sd["adapter.query_embed"].expand(n, -1, -1), a], dim=1) + pos
    a = _ln(a, sd, "adapter.ln_pre", 1e-5)
    for i in range(1, 9):
        a = _vit_block(a, sd, f"adapter.vit_model.blocks.{i - 1}", z.vit_heads)
        if i in fusion_map:  # Fusion: channel LayerNorm (eps 1e-6), 1x1 conv, x + 0.01 * proj
            lw, lb, cw, cb = fusions[i]
            c = F.layer_norm(feats[fusion_map[i]], (W,), lw, lb, 1e-6)
            a = torch.cat([a[:, :Q], a[:, Q:] + 0.01 * F.linear(c, cw, cb)], dim=1)
        if i == 8:
            break
        a = a + pos
    query, xmap = a[:, :Q], a[:, Q:].permute(0, 2, 1).reshape(n, z.width, z.grid, z.grid)
    # Mask_Decoder
    dec = "adapter.mask_decoder"
    q = _mlp(query, sd, f"{dec}.query_mlp", conv=False)
    xray = _mlp(xmap, sd, f"{dec}.xray_mlp", conv=True)
    attn = _mlp(xmap, sd, f"{dec}.attn_mlp", conv=True).reshape(n, z.clip_heads, z.mlp_out, z.grid, z.grid)
    xray_pred = torch.einsum("nqd,ndhw->nqhw", q, xray)
    bias = torch.einsum("nqd,nkdhw->nkqhw", q, attn)
    bias = bias * sd[f"{dec}.bias_scaling.weight"][0, 0] + sd[f"{dec}.bias_scaling.bias"][0]
    # RecAttnClip.build_attn_mask and forward
    t = Q + 1 + L
    mask = torch.zeros(t, t)
    mask[:, :Q] = -100
    mask[torch.arange(Q), torch.arange(Q)] = 0
    mask[:Q, Q] = -100
    mask = mask.expand(n, z.clip_heads, t, t).clone()
    mask[:, :, :Q, -L:] = bias.reshape(n, z.clip_heads, Q, L)
    cls = feats["cls"][:, None]
    x = torch.cat([cls.expand(n, Q, W), cls, feats[0]], dim=1)
    for i in range(z.clip_layers):
        x = _clip_block(x, sd, f"{v}.transformer.resblocks.{i}", z.clip_heads, mask)
        if i == intra_after - 1:
            ib = "rec_attn_clip.clip_intra_blocks.0"
            h = F.relu(
                F.conv1d(
                    x[:, -L:].permute(0, 2, 1), sd[f"{ib}.conv_first.weight"], sd[f"{ib}.conv_first.bias"]
                )
            )
            h = F.conv1d(h, sd[f"{ib}.conv_second.weight"], sd[f"{ib}.conv_second.bias"]).permute(0, 2, 1)
            x = torch.cat([x[:, :-L], h * 0.05 + x[:, -L:]], dim=1)
    tok = _ln(x[:, :Q], sd, f"{v}.ln_post", 1e-5) @ sd[f"{v}.proj"]
    tok = F.normalize(tok, dim=-1)
    # PostClipProcess
    fp = "clip_post_process.first_process"
    y = F.relu(_bn(F.conv1d(tok, sd[f"{fp}.0.weight"], sd[f"{fp}.0.bias"], padding=1), sd, f"{fp}.1"))
    y = F.relu(_bn(F.conv1d(y, sd[f"{fp}.3.weight"], sd[f"{fp}.3.bias"], padding=1), sd, f"{fp}.4"))
    y = F.conv1d(y, sd[f"{fp}.6.weight"], sd[f"{fp}.6.bias"], padding=1)[:, 0]
    sp = "clip_post_process.second_process"
    y = F.relu(F.linear(y, sd[f"{sp}.0.weight"], sd[f"{sp}.0.bias"]))
    y = F.relu(F.linear(y, sd[f"{sp}.2.weight"], sd[f"{sp}.2.bias"]))
    cls_out = F.linear(y, sd[f"{sp}.4.weight"], sd[f"{sp}.4.bias"])
    # MaskPostXrayProcess: zero the non-boundary patches' features, then the convs and the deconvolution
    xp = "masked_xray_post_process.process"
    xr = xray_pred.reshape(n, Q, L).permute(0, 2, 1) * if_boundary.float()[..., None]
    xr = xr.permute(0, 2, 1).reshape(n, Q, z.grid, z.grid)
    xr = F.relu(_bn(F.conv2d(xr, sd[f"{xp}.0.weight"], sd[f"{xp}.0.bias"], padding=1), sd, f"{xp}.1"))
    xr = F.relu(_bn(F.conv2d(xr, sd[f"{xp}.3.weight"], sd[f"{xp}.3.bias"], padding=1), sd, f"{xp}.4"))
    xr = F.conv2d(xr, sd[f"{xp}.6.weight"], sd[f"{xp}.6.bias"])
    xr = F.conv_transpose2d(xr, sd[f"{xp}.7.weight"], sd[f"{xp}.7.bias"], stride=z.patch)
    return cls_out, xr
