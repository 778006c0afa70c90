"""Fake-only sets (e.g. DF40 subsets, Yan et al., NeurIPS 2024): fakes without reals of their own."""

from __future__ import annotations

from pathlib import Path

from datamodules.datasets.base import (
    IMAGE_EXTS,
    SPLITS,
    VIDEO_EXTS,
    Adapter,
    DatasetLayoutError,
    VideoRecord,
    register_layout,
    require_dir,
    safe_stem,
)


@register_layout("fake_only")
class FakeOnlyAdapter(Adapter):
    """A folder of fake videos and/or frame folders, all label 1.

    Expected layout (searched recursively)::

        <root>/**/<video>.mp4           # a fake video
        <root>/**/<video>/0000.png ...  # a folder of frames of one fake video
        <root>/<image>.png              # loose images directly in root: one record each

    Such a set has no reals: in Cross-AUC it pairs with another dataset's reals. Options: ``method``
    (default: the root folder's name), ``split`` (default ``test``).
    """

    default_name = "fake-only"

    def enumerate(
        self,
        root: str | Path,
        dataset: str | None = None,
        method: str | None = None,
        split: str = "test",
        **_: object,
    ) -> list[VideoRecord]:
        root = Path(root)
        name = dataset or self.default_name
        require_dir(root, self.layout, "folder of fake videos or frame folders")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        method = method or safe_stem(root.resolve().name)
        out = []
        for p in sorted(root.rglob("*")):
            rel = safe_stem("_".join(p.relative_to(root).with_suffix("").parts))
            if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
                out.append(VideoRecord(name, split, 1, method, "", f"{name}/{method}/{rel}", p))
            elif p.is_file() and p.suffix.lower() in IMAGE_EXTS and p.parent == root:
                out.append(VideoRecord(name, split, 1, method, "", f"{name}/{method}/{rel}", p, kind="image"))
            elif p.is_dir() and p != root and any(c.suffix.lower() in IMAGE_EXTS for c in p.iterdir()):
                out.append(
                    VideoRecord(name, split, 1, method, "", f"{name}/{method}/{rel}", p, kind="frames")
                )
        if not out:
            raise DatasetLayoutError(f"layout 'fake_only': no video, frame folder or image under {root}")
        return out
