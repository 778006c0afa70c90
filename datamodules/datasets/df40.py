"""DF40 (Yan et al., NeurIPS 2024 D&B) read as released: 40 forgery methods, pre-aligned face crops.

The release tree (YZY-stack/DF40 README, "Folder Structure", commit ce80816)::

    deepfake_detection_datasets/
        DF40/<method>/{ff,cdf}/...         # test data; ff = made from FF++ videos, cdf = from Celeb-DF
        DF40/<method>/{fake,real}/...      # heygen, MidJourney, whichfaceisreal, stargan, starganv2,
                                           #   styleclip, e4e, CollabDiff: "the real data is already
                                           #   included within the folder"
        DF40_train/<method>/{ff,cdf}/...   # training fakes ("only the FF++ (ff) domain" is used)

Inside a domain or class folder the crops come as DeepfakeBench writes them (``frames/<video>/<n>.png``
with ``landmarks/<video>/<n>.npy`` beside ``frames/``), or as folders of generated images
(``<video>/<n>.png``, possibly under one more folder), or as loose images.
"""

from __future__ import annotations

from pathlib import Path

from datamodules.datasets.base import (
    IMAGE_EXTS,
    SPLITS,
    Adapter,
    DatasetLayoutError,
    VideoRecord,
    register_layout,
    require_dir,
    safe_stem,
    warn_partial,
)
from datamodules.datasets.deepfakebench import sibling
from datamodules.media.video import order_frame_files

DOMAINS = ("ff", "cdf")  # a known method's sets, fakes only
OWN = ("fake", "real")  # a self-contained method's classes
RELEASES = {"DF40": "test", "DF40_train": "train"}
SIDE = {"landmarks", "masks"}


def _kind(folder: Path) -> str:
    """``domains`` for ``<method>/{ff,cdf}``, ``own`` for ``<method>/{fake,real}``, else ``""``."""
    subs = {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()
    if subs & set(DOMAINS):
        return "domains"
    return "own" if subs & set(OWN) else ""


def _images(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS]


@register_layout("df40")
class DF40Adapter(Adapter):
    """DF40 as released (see the module docstring for the tree).

    Expected layout: ``root`` is the ``DF40`` (test) folder, the ``DF40_train`` folder, the folder holding
    both, or ONE method folder of either::

        DF40/<method>/{ff,cdf}/frames/<video>/000.png     # + landmarks/<video>/000.npy beside frames/
        DF40/<method>/{ff,cdf}/<video>/000.png            # generated-image sets (no frames/ level)
        DF40/<method>/{fake,real}/...                     # methods shipped with their own reals
        DF40_train/<method>/ff/...

    ``method`` is DF40's method folder (``simswap``, ``heygen``...). The domain is kept in
    ``source_label`` (``simswap/ff``, ``heygen/real``): a video of ``ff``/``cdf`` is a fake; in a
    self-contained method, ``real/`` holds reals (label 0, method ``real``) and ``fake/`` fakes. Folders of
    frames are videos (``frames``, prealigned: DF40's crops and ``landmarks/`` are reused, as
    ``fake_only`` does); loose images are one-frame videos. Split: ``DF40`` -> ``test``, ``DF40_train`` ->
    ``train`` (option ``split`` overrides, e.g. for a method folder taken out of its release).

    Options: ``domains`` (``ff``, ``cdf``, ``own``; default all), ``methods`` (DF40 method folders to
    keep), ``split``, and ``ffpp_root`` / ``celebdf_root``: DF40 ships no reals for its ``ff``/``cdf``
    sets (its README links FF++ and Celeb-DF reals), so a set meant for training adds the reals of those
    downloads (read by the ``ffpp`` / ``celebdf_v2`` layouts, with their official splits; ``ffpp_root``
    also puts a ``DF40_train`` fake named after an FF++ pair or id into that pair's split, train or val).
    """

    default_name = "DF40"

    def enumerate(
        self,
        root: str | Path,
        dataset: str | None = None,
        domains: list[str] | tuple[str, ...] | str | None = None,
        methods: list[str] | tuple[str, ...] | None = None,
        split: str | None = None,
        ffpp_root: str | Path | None = None,
        celebdf_root: str | Path | None = None,
        **_: object,
    ) -> list[VideoRecord]:
        """The records of the DF40 download at ``root`` (layout and options: the class docstring)."""
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout, "DF40 folder, DF40_train folder or one DF40 method folder")
        wanted = {domains} if isinstance(domains, str) else set(domains or (*DOMAINS, "own"))
        if not wanted <= {*DOMAINS, "own"}:
            raise ValueError(f"domains must be among ff, cdf, own; got {sorted(wanted)}")
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        folders = self._method_folders(root, split)
        found = sorted({m.name for m, _ in folders})
        if methods:
            unknown = sorted(set(methods) - set(found))
            if unknown:
                raise DatasetLayoutError(
                    f"layout 'df40': no method folder {unknown} under {root}; found {found}"
                )
            folders = [(m, s) for m, s in folders if m.name in methods]
        ff_splits = _ffpp_pair_splits(ffpp_root) if ffpp_root else {}
        out: list[VideoRecord] = []
        no_reals = []
        for mdir, msplit in folders:
            if _kind(mdir) == "own":
                if "own" in wanted:
                    out += self._own(name, mdir, msplit)
                    if not (mdir / "real").is_dir():
                        no_reals.append(f"{mdir / 'real'} (this method ships its reals there)")
                continue
            for dom in DOMAINS:
                if dom in wanted and (mdir / dom).is_dir():
                    out += self._fakes(name, mdir, dom, msplit, ff_splits if dom == "ff" else {})
        if not out:
            raise DatasetLayoutError(
                f"layout 'df40': no frame folder or image under {root} for domains {sorted(wanted)}"
                + (f" and methods {list(methods)}" if methods else "")
            )
        out += _reals(name, ffpp_root, "ffpp", "ff") if ffpp_root and "ff" in wanted else []
        out += _reals(name, celebdf_root, "celebdf_v2", "cdf") if celebdf_root and "cdf" in wanted else []
        warn_partial(self.layout, root, out, no_reals)
        return out

    def _method_folders(self, root: Path, split: str | None) -> list[tuple[Path, str]]:
        """``(method folder, split)`` for a release parent, a release folder, or one method folder."""
        if _kind(root):
            return [(root, split or RELEASES.get(root.parent.name, "test"))]
        releases = [root / r for r in RELEASES if (root / r).is_dir()] or [root]
        out = []
        for rel in releases:
            rsplit = split or RELEASES.get(rel.name, "test")
            out += [(m, rsplit) for m in sorted(rel.iterdir()) if m.is_dir() and _kind(m)]
        if not out:
            raise DatasetLayoutError(
                f"layout 'df40': {root} is neither the DF40 (or DF40_train) folder, the folder holding them, nor "
                f"one DF40 method folder: expected <method>/{{ff,cdf}}/ or <method>/{{fake,real}}/ below it"
            )
        return out

    def _fakes(self, name: str, mdir: Path, dom: str, split: str, ff_splits: dict) -> list[VideoRecord]:
        out = []
        for stem, frames, loose in _crops(mdir / dom):
            # a training fake named after an FF++ pair/id follows that pair into train or val
            vid_split = (
                ff_splits[stem] if split == "train" and ff_splits.get(stem) in ("train", "val") else split
            )
            out.append(
                _record(
                    name,
                    vid_split,
                    1,
                    mdir.name,
                    f"{_release_prefix(mdir)}{dom}_{stem}",
                    frames,
                    loose,
                    f"{mdir.name}/{dom}",
                )  # fmt: skip
            )
        return out

    def _own(self, name: str, mdir: Path, split: str) -> list[VideoRecord]:
        out = []
        for cls, label in (("fake", 1), ("real", 0)):
            if not (mdir / cls).is_dir():
                continue
            # reals of several methods share the method "real": their ids carry the method folder
            method, prefix = (mdir.name, "fake") if label else ("real", f"{mdir.name}_real")
            for stem, frames, loose in _crops(mdir / cls):
                src = f"{mdir.name}/{cls}"
                vid = f"{_release_prefix(mdir)}{prefix}_{stem}"
                out.append(_record(name, split, label, method, vid, frames, loose, src))
        return out


def _release_prefix(mdir: Path) -> str:
    """``train_`` for DF40_train's videos: the test release reuses their names."""
    return "train_" if mdir.parent.name == "DF40_train" else ""


def _crops(part: Path):
    """``(stem, frames, loose)`` for every frame folder (a video) and loose image below ``part``.

    Folders named ``landmarks``/``masks`` are DeepfakeBench's side outputs, not videos. Images lying in
    ``part`` itself, in ``frames/``, or in a folder named like ``part`` (``fake/fake``) are loose images.
    """
    dirs = [part] + sorted(p for p in part.rglob("*") if p.is_dir())
    for d in dirs:
        rel = d.relative_to(part).parts
        if SIDE & set(rel):
            continue
        imgs = _images(d)
        if not imgs:
            continue
        rel_id = [p for p in rel if p != "frames"]
        if not rel_id or rel_id == [part.name]:
            for img in order_frame_files(imgs):
                yield safe_stem("_".join([*rel_id, img.stem])), (img,), True
        else:
            yield safe_stem("_".join(rel_id)), tuple(order_frame_files(imgs)), False


def _record(name, split, label, method, stem, frames, loose, source) -> VideoRecord:
    lms = tuple(sibling(f, "landmarks", ".npy") for f in frames)
    msk = tuple(sibling(f, "masks", None) for f in frames)
    return VideoRecord(
        name,
        split,
        label,
        method,
        "",
        f"{name}/{method}/{stem}",
        frames[0] if loose else frames[0].parent,
        kind="frames",
        frames=frames,
        prealigned=True,
        landmarks=lms if all(p.is_file() for p in lms) else (),
        masks=msk if all(p.is_file() for p in msk) else (),
        source_label=source,
    )


def _ffpp_pair_splits(ffpp_root: str | Path) -> dict[str, str]:
    """FF++ official split of each pair ``a_b`` (both orders) and id ``a``."""
    from datamodules.datasets.ffpp import find_split_dir, load_splits

    out = {}
    for s, pairs in load_splits(find_split_dir(Path(ffpp_root), None)).items():
        for a, b in pairs:
            out[a] = out[b] = out[f"{a}_{b}"] = out[f"{b}_{a}"] = s
    return out


def _reals(name: str, root: str | Path, layout: str, dom: str) -> list[VideoRecord]:
    """The reals of an FF++ or Celeb-DF download, with their official splits, as reals of this set."""
    from dataclasses import replace

    from datamodules.datasets.base import get_adapter

    recs = get_adapter(layout).enumerate(root, dataset=name)
    return [
        replace(
            r, video_id=f"{name}/real/{dom}_{r.video_id.rsplit('/', 1)[1]}", source_label=f"{layout} reals"
        )
        for r in recs
        if r.label == 0
    ]
