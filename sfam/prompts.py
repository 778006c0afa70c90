"""Region prompts for SFAM: per-region real/fake descriptions encoded once by the frozen CLIP text tower.

SFAM's abstract (Luo, Chen, Liu, arXiv 2604.21478) names a "semantic fine-grained" image-text alignment;
the paper's prompts are not public. The descriptions below are ours, in the spirit of MFCLIP's
fine-grained prompts (Zhang et al., TIFS 2025): for every facial region of
``datamodules.media.regions.REGIONS`` plus one ``global`` set, a few phrases for a real and for a forged face.
Each phrase is put into a few templates; every sentence is encoded, L2-normalised, averaged over its set
and normalised again (the CLIP zero-shot recipe of Radford et al., ICML 2021).

Optional learnable context (CoOp, Zhou et al., IJCV 2022; used for forgery prompts by Forensics
Adapter++): ``n_ctx`` shared vectors replace the first ``n_ctx`` word slots of every description; the
frozen text tower then runs on every forward (only the vectors train). With ``n_ctx=0`` (default) the
embeddings are buffers computed once at construction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamodules.media.regions import REGIONS

GLOBAL = "global"
CLASSES = ("real", "fake")

#: descriptions per set (regions in the order of REGIONS, then "global"); noun phrases for the templates.
DESCRIPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "eyes": {
        "real": (
            "natural eyes with consistent reflections",
            "sharp eyes and eyebrows with fine eyelashes",
            "symmetric eyes with a natural gaze",
        ),
        "fake": (
            "blurry eyes with inconsistent reflections",
            "distorted eyes and eyebrows with blending artifacts",
            "asymmetric eyes with an unnatural gaze",
        ),
    },
    "nose": {
        "real": (
            "a natural nose with consistent shading",
            "a nose with realistic skin pores",
            "a sharp nose bridge with natural shadows",
        ),
        "fake": (
            "a smeared nose with inconsistent shading",
            "a nose with over-smoothed skin",
            "a warped nose bridge with unnatural shadows",
        ),
    },
    "mouth": {
        "real": (
            "natural lips and clearly separated teeth",
            "a mouth with realistic lip texture",
            "a sharp mouth with consistent lighting",
        ),
        "fake": (
            "blurred teeth and unnatural lip texture",
            "a mouth with flickering, smeared lips",
            "a mouth with a visible blending boundary",
        ),
    },
    "forehead": {
        "real": (
            "a natural forehead with even skin tone",
            "a forehead with realistic skin texture",
            "a forehead with consistent lighting",
        ),
        "fake": (
            "a color mismatch on the forehead",
            "a blending boundary across the forehead",
            "an over-smoothed forehead with uneven lighting",
        ),
    },
    "skin": {
        "real": (
            "natural cheek and jaw skin with fine pores",
            "cheeks with consistent skin tone",
            "a jawline with natural texture",
        ),
        "fake": (
            "over-smoothed skin texture on the cheeks",
            "a color mismatch between cheeks and jaw",
            "a blending seam along the jawline",
        ),
    },
    "outside": {
        "real": (
            "natural hair and background around the face",
            "a consistent transition between face and background",
            "a neck and hairline with natural texture",
        ),
        "fake": (
            "a visible blending seam between face and background",
            "a blurry hairline around a pasted face",
            "an inconsistent boundary between face and neck",
        ),
    },
    GLOBAL: {
        "real": ("a real face", "an authentic unedited face", "a natural human face"),
        "fake": ("a manipulated face", "a deepfake face", "a face-swapped forged face"),
    },
}

#: sentence templates wrapped around every description (fixed-prompt mode).
TEMPLATES: tuple[str, ...] = ("a photo of {}.", "a close-up face photo showing {}.", "{}.")

#: the word CoOp uses as a one-token placeholder for a learnable context vector.
_CTX_WORD = "X"


@lru_cache(maxsize=4)
def _tokenizer(name: str, context_length: int) -> Callable[[list[str]], Tensor]:
    """open_clip's tokenizer, built once per process (reading the bundled BPE takes a noticeable moment)."""
    import open_clip

    return open_clip.get_tokenizer(name, context_length=context_length)


class TextTower(nn.Module):
    """The frozen text side of an open_clip CLIP model, able to encode token embeddings directly.

    Encodes only up to the last end-of-text token: with causal attention and end-of-text pooling the
    output does not depend on later positions, so this is exact and about 4x cheaper than 77 tokens.
    """

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        src = clip.text if hasattr(clip, "text") else clip  # CustomTextCLIP keeps the tower in .text
        needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")
        missing = [n for n in needed if not hasattr(src, n)]
        if missing:
            raise ValueError(
                f"unsupported CLIP text tower {type(src).__name__}: missing {missing}; "
                "SFAM's prompt bank needs an open_clip TextTransformer-style tower"
            )
        self.token_embedding = src.token_embedding
        self.positional_embedding = src.positional_embedding
        self.transformer = src.transformer
        self.ln_final = src.ln_final
        self.text_projection = src.text_projection
        self.pool_type = getattr(src, "text_pool_type", getattr(src, "pool_type", "argmax"))
        self.eos_id = getattr(src, "text_eos_id", getattr(src, "eos_id", None))
        self.register_buffer("attn_mask", src.attn_mask, persistent=False)
        self.context_length = int(self.positional_embedding.shape[0])
        self.width = int(self.positional_embedding.shape[1])

    def forward(self, tokens: Tensor, ctx: Tensor | None = None) -> Tensor:
        """Text embeddings ``[S, D]`` (not normalised) of token ids ``[S, L]``.

        ``ctx`` ``[n, width]`` replaces the embeddings at positions ``1..n`` (after start-of-text).
        """
        from open_clip.transformer import text_global_pool

        length = tokens.shape[1]
        if self.attn_mask is not None and self.pool_type in ("argmax", "eos"):
            end = (
                tokens.argmax(-1) if self.pool_type == "argmax" else (tokens == self.eos_id).int().argmax(-1)
            )
            length = int(end.max()) + 1
        tokens = tokens[:, :length]
        cast = self.transformer.get_cast_dtype()
        x = self.token_embedding(tokens).to(cast)
        if ctx is not None:
            n = ctx.shape[0]
            x = torch.cat([x[:, :1], ctx.to(cast).expand(x.shape[0], -1, -1), x[:, 1 + n :]], dim=1)
        x = x + self.positional_embedding[:length].to(cast)
        mask = self.attn_mask[:length, :length] if self.attn_mask is not None else None
        x = self.ln_final(self.transformer(x, attn_mask=mask))
        x = text_global_pool(x, tokens, self.pool_type, eos_token_id=self.eos_id)
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x)
        return x @ self.text_projection if self.text_projection is not None else x


def _sentences(
    descriptions: Mapping[str, Mapping[str, Sequence[str]]],
    sets: Sequence[str],
    templates: Sequence[str],
    n_ctx: int,
) -> tuple[list[str], list[int]]:
    """All sentences and, for each, the index ``set * 2 + class`` of the set it belongs to."""
    texts, owner = [], []
    for s, name in enumerate(sets):
        if name not in descriptions:
            raise KeyError(f"no prompt descriptions for region {name!r}; known: {sorted(descriptions)}")
        for c, cls in enumerate(CLASSES):
            phrases = descriptions[name].get(cls, ())
            if not phrases:
                raise ValueError(f"prompt set {name!r}/{cls!r} is empty")
            for p in phrases:
                if n_ctx:  # CoOp: learnable context, no hand-written template
                    texts.append(" ".join([_CTX_WORD] * n_ctx) + " " + p + ".")
                    owner.append(2 * s + c)
                else:
                    for t in templates:
                        texts.append(t.format(p))
                        owner.append(2 * s + c)
    return texts, owner


class PromptBank(nn.Module):
    """Region and global prompt embeddings in CLIP's joint space.

    ``forward()`` returns ``(region_text [R, 2, D], global_text [2, D])``, unit-norm, class order
    ``(real, fake)``, regions in the order of ``regions``.

    Args:
        clip: an open_clip CLIP model (its text tower is used; frozen by the caller when kept).
        regions: region names (default ``datamodules.media.regions.REGIONS``).
        descriptions: ``{set: {"real": [...], "fake": [...]}}`` with every region and ``"global"``.
        templates: sentence templates (fixed-prompt mode only).
        n_ctx: number of learnable context vectors (0: fixed prompts cached as buffers).
        tokenizer: open_clip tokenizer name (the bundled BPE of the OpenAI models; no download).
    """

    def __init__(
        self,
        clip: nn.Module,
        regions: Sequence[str] = REGIONS,
        descriptions: Mapping[str, Mapping[str, Sequence[str]]] = DESCRIPTIONS,
        templates: Sequence[str] = TEMPLATES,
        n_ctx: int = 0,
        tokenizer: str = "ViT-B-16",
    ) -> None:
        super().__init__()
        if n_ctx < 0:
            raise ValueError(f"n_ctx must be >= 0, got {n_ctx}")
        self.regions = tuple(regions)
        self.n_ctx = n_ctx
        sets = [*self.regions, GLOBAL]
        texts, owner = _sentences(descriptions, sets, templates, n_ctx)
        tower = TextTower(clip)
        tokens = _tokenizer(tokenizer, tower.context_length)(texts)
        self.num_sets = 2 * len(sets)
        if n_ctx:
            self.tower: TextTower | None = tower
            self.ctx = nn.Parameter(torch.randn(n_ctx, tower.width) * 0.02)
            self.register_buffer("tokens", tokens, persistent=False)
            self.register_buffer("owner", torch.tensor(owner), persistent=False)
        else:
            self.tower = None
            with torch.no_grad():
                emb = self._pool(tower(tokens).float(), torch.tensor(owner))
            self.register_buffer("text", emb)  # persistent: a checkpoint carries the real embeddings

    def _pool(self, emb: Tensor, owner: Tensor) -> Tensor:
        """Normalise sentences, average per set, normalise again -> ``[sets, 2, D]``."""
        emb = F.normalize(emb, dim=-1)
        total = emb.new_zeros(self.num_sets, emb.shape[-1]).index_add_(0, owner.to(emb.device), emb)
        return F.normalize(total, dim=-1).view(-1, 2, emb.shape[-1])

    def forward(self) -> tuple[Tensor, Tensor]:
        """Region and global text embeddings of the prompts (through the text tower when the context is
        learned)."""
        if self.tower is not None:
            return self._split(self._pool(self.tower(self.tokens, self.ctx), self.owner))
        return self._split(self.text)

    @staticmethod
    def _split(text: Tensor) -> tuple[Tensor, Tensor]:
        return text[:-1], text[-1]
