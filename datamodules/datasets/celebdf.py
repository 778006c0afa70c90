"""Celeb-DF v1 and v2 (Li et al., CVPR 2020) with the official test list."""

from __future__ import annotations

from pathlib import Path

from datamodules.datasets.base import (
    Adapter,
    DatasetLayoutError,
    VideoRecord,
    missing_report,
    register_layout,
    require_dir,
    require_file,
    seeded_val,
    videos_in,
)

TEST_LIST = "List_of_testing_videos.txt"
_FOLDERS = {"Celeb-real": (0, "real"), "YouTube-real": (0, "real"), "Celeb-synthesis": (1, "fake")}


def read_test_list(path: Path) -> dict[str, int]:
    """``{relative path: label}`` with labels converted to OUR convention (0 real, 1 fake).

    The file's own convention is inverted: ``1 YouTube-real/00170.mp4`` means REAL, ``0 ...`` FAKE.
    """
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            raise DatasetLayoutError(
                f"{path}:{n}: expected '<1 real|0 fake> <folder/video.mp4>', got {line!r}"
            )
        out[parts[1].replace("\\", "/")] = 1 - int(parts[0])
    return out


def identity(folder: str, stem: str) -> str:
    """The person a video belongs to: ``id0`` for ``id0_0000`` and for the fake ``id0_id1_0000``
    (the target video's identity); a YouTube-real video is its own group."""
    return f"yt:{stem}" if folder == "YouTube-real" else stem.split("_")[0]


class _CelebDF(Adapter):
    require_youtube = True

    def enumerate(
        self,
        root: str | Path,
        dataset: str | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        **_: object,
    ) -> list[VideoRecord]:
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout, "Celeb-DF root")
        folders = ["Celeb-real", "Celeb-synthesis"] + (
            ["YouTube-real"] if self.require_youtube or (root / "YouTube-real").is_dir() else []
        )
        for f in folders:
            require_dir(root / f, self.layout)
        listed = read_test_list(require_file(root / TEST_LIST, self.layout, "official test list"))
        found: dict[str, tuple[Path, str]] = {}
        for f in folders:
            for v in videos_in(root / f):
                found[f"{f}/{v.name}"] = (v, f)
        missing = sorted(set(listed) - set(found))
        if missing:
            raise DatasetLayoutError(f"{root / TEST_LIST}: " + missing_report(missing, "listed test videos"))
        wrong = [
            f"{rel} (file says {'real' if lab == 0 else 'fake'}, folder {found[rel][1]})"
            for rel, lab in listed.items()
            if _FOLDERS[found[rel][1]][0] != lab
        ]
        if wrong:
            raise DatasetLayoutError(
                f"{root / TEST_LIST}: {len(wrong)} label(s) contradict the folder; the file's convention is "
                f"1 = REAL, 0 = FAKE; first: {wrong[:5]}"
            )
        train_groups = [identity(f, v.stem) for rel, (v, f) in found.items() if rel not in listed]
        val_ids = seeded_val(train_groups, val_fraction, seed)
        out = []
        for rel, (v, f) in sorted(found.items()):
            label, method = _FOLDERS[f]
            split = "test" if rel in listed else "val" if identity(f, v.stem) in val_ids else "train"
            prefix = "yt_" if f == "YouTube-real" else ""  # Celeb-real and YouTube-real stems could clash
            out.append(VideoRecord(name, split, label, method, "", f"{name}/{method}/{prefix}{v.stem}", v))
        return out


@register_layout("celebdf_v2")
class CelebDFv2Adapter(_CelebDF):
    """Celeb-DF v2. Test = the videos of ``List_of_testing_videos.txt``; every other video is train,
    minus a validation split carved from train BY IDENTITY with a fixed seed (``val_fraction`` 0.1,
    ``seed`` 0): whole identities (``id0`` of ``id0_0000`` and of the fake ``id0_id1_0000``; each
    YouTube-real video alone) go to val. Test videos never appear in train or val.

    Expected layout::

        Celeb-real/id0_0000.mp4
        Celeb-synthesis/id0_id1_0000.mp4
        YouTube-real/00000.mp4
        List_of_testing_videos.txt      # lines "1 YouTube-real/00170.mp4": 1 = REAL, 0 = FAKE (inverted!)

    A listed video that is missing, or a listed label that contradicts its folder, is an error.
    """

    default_name = "CDF-v2"


@register_layout("celebdf_v1")
class CelebDFv1Adapter(_CelebDF):
    """Celeb-DF v1: as v2 (same test-list convention and splits), ``YouTube-real`` optional.

    Expected layout::

        Celeb-real/id0_0000.mp4
        Celeb-synthesis/id0_id1_0000.mp4
        [YouTube-real/00000.mp4]
        List_of_testing_videos.txt      # "1 Celeb-real/id0_0001.mp4": 1 = REAL, 0 = FAKE
    """

    default_name = "CDF-v1"
    require_youtube = False
