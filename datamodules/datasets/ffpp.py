"""FaceForensics++ (Rössler et al., ICCV 2019) from its official download and official splits."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from datamodules.datasets.base import (
    Adapter,
    DatasetLayoutError,
    VideoRecord,
    register_layout,
    require_dir,
    videos_in,
    warn_partial,
)

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
COMPRESSIONS = ("raw", "c23", "c40")


def check_compression(root: Path, sub: str, compression: str, layout: str) -> Path:
    """The ``<sub>/<compression>/videos`` folder of an FF++ download; an error naming the compressions
    present."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    folder = root / sub / compression / "videos"
    if not folder.is_dir():
        have = [c for c in COMPRESSIONS if (root / sub / c / "videos").is_dir()]
        raise DatasetLayoutError(
            f"layout {layout!r}: missing folder {folder} (compression {compression!r}); "
            f"compressions present: {have or 'none'}"
        )
    return folder


SPLITS_SOURCE = (
    "the official split files train.json, val.json, test.json (lists of id pairs) are in the FaceForensics "
    "GitHub repository (github.com/ondyari/FaceForensics, folder dataset/splits/), not in the download"
)


def find_split_dir(root: Path, split_dir: str | Path | None, layout: str = "ffpp") -> Path:
    """Where the official split JSONs are: ``split_dir`` if given, else ``root/splits`` (this suite's
    placement), else ``root`` itself (DeepfakeBench's ``rearrange.py`` reads ``FaceForensics++/train.json``)."""
    if split_dir is not None:
        return Path(split_dir)
    names = ("train.json", "val.json", "test.json")
    for cand in (root / "splits", root):
        if any((cand / n).is_file() for n in names):
            return cand
    raise DatasetLayoutError(
        f"layout {layout!r}: no official FF++ split files under {root}: looked for {root / 'splits'}/"
        f"{{train,val,test}}.json and {root}/{{train,val,test}}.json (DeepfakeBench's placement); "
        f"{SPLITS_SOURCE}: copy them to {root / 'splits'} or pass split_dir=<folder> (CLI: --option split_dir=...)"
    )


def load_splits(split_dir: Path, layout: str = "ffpp") -> dict[str, list[tuple[str, str]]]:
    """``{split: [(a, b), ...]}`` from the official ``train/val/test.json`` files (lists of id pairs)."""
    out = {}
    for split in ("train", "val", "test"):
        f = split_dir / f"{split}.json"
        if not f.is_file():
            raise DatasetLayoutError(
                f"layout {layout!r}: missing file {f} (official FF++ split: a JSON list of id pairs); "
                f"{SPLITS_SOURCE}; or pass split_dir=<folder>"
            )
        try:
            pairs = json.loads(f.read_text())
            out[split] = [(str(a), str(b)) for a, b in pairs]
        except (ValueError, TypeError) as e:
            raise DatasetLayoutError(f'{f}: not a JSON list of id pairs [["071", "054"], ...]: {e}') from e
    return out


@register_layout("ffpp")
class FFppAdapter(Adapter):
    """FaceForensics++: reals, five manipulation methods, mask videos, official pair splits.

    Expected layout (``root`` = the FF++ download folder)::

        original_sequences/youtube/{raw,c23,c40}/videos/000.mp4
        manipulated_sequences/<Method>/{raw,c23,c40}/videos/000_003.mp4     # target_source
        manipulated_sequences/<Method>/masks/videos/000_003.mp4             # optional binary masks
        splits/{train,val,test}.json                                        # [["071","054"], ...]

    ``<Method>`` is any of Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter; methods whose
    folder is absent are skipped (at least one must exist). A pair ``[a, b]`` puts reals ``a`` and ``b``
    and fakes ``a_b`` and ``b_a`` in that split. Videos in no split are left out with a warning.

    Options: ``compression`` (``c23``), ``methods`` (names to keep), ``split_dir`` (default
    ``root/splits``, then ``root`` itself where DeepfakeBench puts ``train.json``...: the official JSONs
    ship in the FaceForensics GitHub repository, ``dataset/splits/``, not in the download).

    A partial download is read with a ``PartialDatasetWarning`` that counts what was found per split and
    method: no ``original_sequences/youtube`` reals, or fewer videos than the split files list.
    """

    default_name = "FF++"

    def enumerate(
        self,
        root: str | Path,
        dataset: str | None = None,
        compression: str = "c23",
        methods: list[str] | tuple[str, ...] | None = None,
        split_dir: str | Path | None = None,
        **_: object,
    ) -> list[VideoRecord]:
        """The records of the FaceForensics++ download at ``root``, split by its official JSON lists."""
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout, "FF++ root")
        splits = load_splits(find_split_dir(root, split_dir, self.layout), self.layout)
        of_id: dict[str, str] = {}
        of_pair: dict[tuple[str, str], str] = {}
        for split, pairs in splits.items():
            for a, b in pairs:
                of_id[a] = of_id[b] = split
                of_pair[(a, b)] = of_pair[(b, a)] = split
        wanted = tuple(methods) if methods else FFPP_METHODS
        unknown = [m for m in wanted if m not in FFPP_METHODS]
        if unknown:
            raise ValueError(f"unknown FF++ method(s) {unknown}; known: {', '.join(FFPP_METHODS)}")
        present = [
            m for m in wanted if (root / "manipulated_sequences" / m / compression / "videos").is_dir()
        ]
        real_sub = "original_sequences/youtube"
        if not present:
            check_compression(root, real_sub, compression, self.layout)  # names the compression problem first
            raise DatasetLayoutError(
                f"layout 'ffpp': no manipulated_sequences/<Method>/{compression}/videos folder under {root} "
                f"(methods looked for: {', '.join(wanted)})"
            )
        real_dir = root / real_sub / compression / "videos"
        records, unassigned = [], []
        for v in videos_in(real_dir) if real_dir.is_dir() else []:
            split = of_id.get(v.stem)
            if split is None:
                unassigned.append(str(v))
                continue
            records.append(VideoRecord(name, split, 0, "real", compression, f"{name}/real/{v.stem}", v,
                                       source_label="youtube"))  # fmt: skip
        for m in present:
            mdir = root / "manipulated_sequences" / m
            for v in videos_in(mdir / compression / "videos"):
                ids = tuple(v.stem.split("_"))
                split = of_pair.get(ids) if len(ids) == 2 else None
                if split is None:
                    unassigned.append(str(v))
                    continue
                mask = mdir / "masks" / "videos" / v.name
                records.append(
                    VideoRecord(name, split, 1, m, compression, f"{name}/{m}/{v.stem}", v,
                                mask if mask.is_file() else None, source_label=m)
                )  # fmt: skip
        if unassigned:
            warnings.warn(
                f"FF++: {len(unassigned)} video(s) are in no official split and were left out, "
                f"e.g. {unassigned[:3]}",
                stacklevel=2,
            )
        warn_partial(self.layout, root, records, _missing_parts(records, splits, present, real_dir))
        return records


def _missing_parts(
    records: list[VideoRecord], splits: dict[str, list[tuple[str, str]]], methods: list[str], real_dir: Path
) -> list[str]:
    """What the official splits list but the download lacks: the reals, or videos of a split."""
    if not real_dir.is_dir():
        return [f"the reals ({real_dir})"]
    have: dict[tuple[str, str], int] = {}
    for r in records:
        have[(r.split, r.method)] = have.get((r.split, r.method), 0) + 1
    short = [
        f"{m} {split} {have.get((split, m), 0)} of {2 * len(pairs)}"
        for split, pairs in splits.items()
        for m in ("real", *methods)
        if have.get((split, m), 0) < 2 * len(pairs)
    ]
    return [f"videos the official splits list ({', '.join(short)})"] if short else []
