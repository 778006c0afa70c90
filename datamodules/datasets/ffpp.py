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
    require_file,
    videos_in,
)

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
COMPRESSIONS = ("raw", "c23", "c40")


def check_compression(root: Path, sub: str, compression: str, layout: str) -> Path:
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


def load_splits(split_dir: Path, layout: str = "ffpp") -> dict[str, list[tuple[str, str]]]:
    """``{split: [(a, b), ...]}`` from the official ``train/val/test.json`` files (lists of id pairs)."""
    out = {}
    for split in ("train", "val", "test"):
        f = require_file(split_dir / f"{split}.json", layout, "official FF++ split: a JSON list of id pairs")
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
    ``root/splits``: the official JSONs ship in the FF++ GitHub repository, not in the download).
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
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout, "FF++ root")
        real_dir = check_compression(root, "original_sequences/youtube", compression, self.layout)
        splits = load_splits(Path(split_dir) if split_dir else root / "splits", self.layout)
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
        if not present:
            raise DatasetLayoutError(
                f"layout 'ffpp': no manipulated_sequences/<Method>/{compression}/videos folder under {root} "
                f"(methods looked for: {', '.join(wanted)})"
            )
        records, unassigned = [], []
        for v in videos_in(real_dir):
            split = of_id.get(v.stem)
            if split is None:
                unassigned.append(str(v))
                continue
            records.append(VideoRecord(name, split, 0, "real", compression, f"{name}/real/{v.stem}", v))
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
                    VideoRecord(
                        name,
                        split,
                        1,
                        m,
                        compression,
                        f"{name}/{m}/{v.stem}",
                        v,
                        mask if mask.is_file() else None,
                    )
                )
        if unassigned:
            warnings.warn(
                f"FF++: {len(unassigned)} video(s) are in no official split and were left out, "
                f"e.g. {unassigned[:3]}",
                stacklevel=2,
            )
        return records
