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
from datamodules.datasets.deepfakebench import sibling
from datamodules.media.video import list_frame_files


@register_layout("fake_only")
class FakeOnlyAdapter(Adapter):
    """A folder of fake videos and/or frame folders, all label 1.

    Expected layout (searched recursively)::

        <root>/**/<video>.mp4           # a fake video
        <root>/**/<video>/0000.png ...  # a folder of frames of one fake video
        <root>/<image>.png              # loose images directly in root: one record each

    Folders named ``masks`` or ``landmarks`` (DeepfakeBench's side outputs) are not frame folders.
    Such a set has no reals: in Cross-AUC it pairs with another dataset's reals. Options: ``method``
    (default: the root folder's name, or its parent's for a domain folder ``ff``/``cdf``/``fake``, as in
    DF40's ``<method>/ff``), ``split`` (default ``test``), ``prealigned`` (the frames are
    DeepfakeBench-style aligned crops: reused, with ``landmarks/`` ``.npy`` files found beside
    ``frames/``, instead of detecting faces again).

    A root holding a ``real/`` folder is refused (its videos would be labelled fake): read DF40's
    released tree with the ``df40`` layout, a split/label tree with ``folder``.
    """

    default_name = "fake-only"

    def enumerate(
        self,
        root: str | Path,
        dataset: str | None = None,
        method: str | None = None,
        split: str = "test",
        prealigned: bool = False,
        **_: object,
    ) -> list[VideoRecord]:
        """The records of a folder of fake videos (or frame folders) of one ``method`` (options: the class
        docstring)."""
        root = Path(root)
        name = dataset or self.default_name
        require_dir(root, self.layout, "folder of fake videos or frame folders")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        reals = next((p for p in [root, *root.rglob("*")] if p.is_dir() and p.name.lower() == "real"), None)
        if reals is not None:
            raise DatasetLayoutError(
                f"layout 'fake_only': {root} holds a real/ folder ({reals}); its videos would be labelled "
                "fake. Read DF40's released tree (DF40/<method>/{fake,real}) with layout 'df40', or a "
                "{train,val,test}/{real,fake} tree with layout 'folder'"
            )
        here = root.resolve()
        method = method or safe_stem(here.parent.name if here.name in ("ff", "cdf", "fake") else here.name)
        out = []
        for p in sorted(root.rglob("*")):
            if {"masks", "landmarks"} & set(p.relative_to(root).parts):
                continue
            rel = safe_stem("_".join(p.relative_to(root).with_suffix("").parts))
            if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
                out.append(VideoRecord(name, split, 1, method, "", f"{name}/{method}/{rel}", p))
            elif p.is_file() and p.suffix.lower() in IMAGE_EXTS and p.parent == root:
                out.append(VideoRecord(name, split, 1, method, "", f"{name}/{method}/{rel}", p, kind="image"))
            elif p.is_dir() and p != root and any(c.suffix.lower() in IMAGE_EXTS for c in p.iterdir()):
                out.append(self._frames(name, split, method, f"{name}/{method}/{rel}", p, prealigned))
        if not out:
            raise DatasetLayoutError(f"layout 'fake_only': no video, frame folder or image under {root}")
        return out

    @staticmethod
    def _frames(name: str, split: str, method: str, vid: str, folder: Path, prealigned: bool) -> VideoRecord:
        if not prealigned:
            return VideoRecord(name, split, 1, method, "", vid, folder, kind="frames")
        frames = tuple(list_frame_files(folder))
        lms = tuple(sibling(f, "landmarks", ".npy") for f in frames)
        msk = tuple(sibling(f, "masks", None) for f in frames)
        return VideoRecord(
            name, split, 1, method, "", vid, folder, None, "frames", frames, True,
            lms if all(x.is_file() for x in lms) else (),
            msk if all(x.is_file() for x in msk) else (),
        )  # fmt: skip
