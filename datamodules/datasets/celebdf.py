"""Celeb-DF v1 and v2 (Li et al., CVPR 2020) with the official test list."""

from __future__ import annotations

import re
from pathlib import Path

from datamodules.datasets.base import (
    Adapter,
    DatasetLayoutError,
    VideoRecord,
    carve_val,
    missing_report,
    register_layout,
    require_dir,
    require_file,
    videos_in,
)

TEST_LIST = "List_of_testing_videos.txt"
_FOLDERS = {"Celeb-real": (0, "real"), "YouTube-real": (0, "real"), "Celeb-synthesis": (1, "fake")}
_ID = re.compile(r"^id\d+$")


def read_list_lines(path: Path) -> dict[str, int]:
    """``{relative path: digit}`` of a ``List_of_testing_videos.txt`` (lines ``<0|1> <folder/.../x.mp4>``)."""
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            raise DatasetLayoutError(
                f"{path}:{n}: expected '<1 real|0 fake> <folder/video.mp4>', got {line!r}"
            )
        out[parts[1].replace("\\", "/")] = int(parts[0])
    return out


def read_test_list(path: Path) -> dict[str, int]:
    """``{relative path: label}`` with labels converted to OUR convention (0 real, 1 fake).

    The file's own convention is inverted: ``1 YouTube-real/00170.mp4`` means REAL, ``0 ...`` FAKE.
    """
    return {rel: 1 - digit for rel, digit in read_list_lines(path).items()}


def identities(folder: str, stem: str) -> frozenset[str]:
    """The people a Celeb-DF video shows: ``{id0}`` for ``id0_0000``, target AND source ``{id0, id1}`` for
    the fake ``id0_id1_0000``; a YouTube-real video (people without an id) is its own group ``yt:<stem>``."""
    if folder == "YouTube-real":
        return frozenset({f"yt:{stem}"})
    return frozenset(t for t in stem.split("_") if _ID.match(t)) or frozenset({f"video:{stem}"})


def video_stem(folder: str, stem: str) -> str:
    """A video's id stem: Celeb-real and YouTube-real stems could clash, so the latter get ``yt_``."""
    return f"yt_{stem}" if folder == "YouTube-real" else stem


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
        train = {rel: identities(f, v.stem) for rel, (v, f) in found.items() if rel not in listed}
        val, left_out = carve_val(train, val_fraction, seed)
        out = []
        for rel, (v, f) in sorted(found.items()):
            if rel in left_out:
                continue
            label, method = _FOLDERS[f]
            split = "test" if rel in listed else "val" if rel in val else "train"
            vid = f"{name}/{method}/{video_stem(f, v.stem)}"
            out.append(VideoRecord(name, split, label, method, "", vid, v, source_label=f))
        return out


@register_layout("celebdf_v2")
class CelebDFv2Adapter(_CelebDF):
    """Celeb-DF v2. Test = the videos of ``List_of_testing_videos.txt``; every other video is train,
    minus a validation split carved BY IDENTITY with a fixed seed (``val_fraction`` 0.1, ``seed`` 0).

    A fixed-seed choice of identities (``id0``; each YouTube-real video is its own) goes to val; a video
    goes to val when every person it shows (a real: its ``id<t>``; a fake ``id<t>_id<s>_*``: target AND
    source) is a val identity, stays in train when none is, and is left out of both otherwise (about
    ``2 f (1 - f)`` of the swaps between celebrities for ``val_fraction`` f), so no person of a val video
    appears in train. Test videos never appear in train or val.

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
