"""Shared open_clip loading for the CLIP-based detectors (Forensics Adapter, SFAM, the CLIP linear probe).

Policy (same as every other backbone): OpenAI weights from open_clip's hub when reachable, a local file
when given, random initialisation with one clear warning otherwise. OpenAI weights use QuickGELU, so the
default names are the ``-quickgelu`` variants (a local OpenAI file does not set QuickGELU by itself).

``tiny=True`` builds a small CLIP of the same architecture family (for tests only): 4 vision blocks of
width 64 (2 heads), 32 px input with 8 px patches (a 4x4 grid), 2 text blocks, joint width 32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from detectors.frozen_backbone import BackboneSource, tag_backbone
from detectors.weights import warn_random_init

TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {
        "image_size": 32,
        "patch_size": 8,
        "width": 64,
        "layers": 4,
        "head_width": 32,
        "mlp_ratio": 4.0,
    },
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    "quick_gelu": True,
}


@dataclass(frozen=True)
class ClipGeometry:
    """Sizes that CLIP-side modules derive from the backbone instead of hard-coding them."""

    image_size: int
    patch_size: int
    grid: int  # patches per side
    width: int  # vision transformer width
    heads: int
    layers: int
    embed_dim: int  # joint image-text space

    @property
    def num_patches(self) -> int:
        """The number of patch tokens (``grid`` x ``grid``)."""
        return self.grid * self.grid


def create_clip(
    model_name: str = "ViT-B-16-quickgelu",
    pretrained: str | None = "openai",
    weights_path: str | Path | None = None,
    tiny: bool = False,
) -> tuple[nn.Module, bool]:
    """Build an open_clip CLIP model. Returns ``(model, pretrained_loaded)``.

    Every module of the model is tagged with its :class:`~detectors.frozen_backbone.BackboneSource`, so a
    detector that freezes a part of it gets lean checkpoints (the part stored by reference).
    """
    import open_clip

    def tagged(model: nn.Module, arch: str, tag: str | None = None, file: Path | None = None) -> nn.Module:
        init = "pretrained" if tag or file else "random"
        source = BackboneSource("open_clip", arch, tag, str(file) if file else None, init)
        return tag_backbone(model, source)

    if tiny:
        return tagged(open_clip.CLIP(**TINY_CLIP_CFG), "tiny"), False
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"CLIP weights file not found: {path}")
        return tagged(open_clip.create_model(model_name, pretrained=str(path)), model_name, file=path), True
    if pretrained:
        try:
            model = open_clip.create_model(model_name, pretrained=pretrained, require_pretrained=True)
            return tagged(model, model_name, pretrained), True
        except Exception as e:  # offline (HF_HUB_OFFLINE=1 fails fast), unknown tag, ...
            warn_random_init(
                f"open_clip '{model_name}' ({pretrained})",
                f"{type(e).__name__}: {str(e).splitlines()[0][:160]}",
            )
    return tagged(open_clip.create_model(model_name, pretrained=None), model_name), False


def clip_geometry(model: nn.Module) -> ClipGeometry:
    """Read grid size, widths, heads and depth from an open_clip model's vision tower."""
    v = model.visual
    image_size = v.image_size[0] if isinstance(v.image_size, tuple) else int(v.image_size)
    patch = v.patch_size[0] if isinstance(v.patch_size, tuple) else int(v.patch_size)
    block = v.transformer.resblocks[0]
    return ClipGeometry(
        image_size=image_size,
        patch_size=patch,
        grid=image_size // patch,
        width=int(v.transformer.width),
        heads=int(block.attn.num_heads),
        layers=len(v.transformer.resblocks),
        embed_dim=int(v.proj.shape[1]) if v.proj is not None else int(v.transformer.width),
    )
