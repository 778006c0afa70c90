"""Celeb-DF++ (Li et al., 2025; OUC-VAS/Celeb-DF-PP): Celeb-DF's people, 22 forgery methods in three
scenarios, one shared pool of real test videos.

The release tree (OUC-VAS/Celeb-DF-PP README, "Dataset Structure", commit 8564a64)::

    Celeb-DF++/
        Celeb-real/                 YouTube-real/
        Celeb-synthesis/FaceSwap/{Celeb-DF,BlendFace,GHOST,HifiFace,InSwapper,MobileFaceSwap,SimSwap,UniFace}/
        Celeb-synthesis/FaceReenact/{DaGAN,FSRT,HyperReenact,LIA,LivePortrait,MCNET,TPSMM}/
        Celeb-synthesis/TalkingFace/{AniTalker,EchoMimic,EDTalk,FLOAT,IP_LAP,Real3DPortrait,SadTalker}/
        List_of_testing_videos.txt

"For real testing videos, we follow the split of Celeb-DF, where 178 videos are selected. For DeepFake
testing videos, we randomly select 200 videos per method in the Face-swap scenario, 200 videos per method
in the Face-reenactment scenario, and 300 videos per method in the Talking-face scenario" (README,
"Training and Testing Split"): every method's test fakes are scored against the same 178 reals.
"""

from __future__ import annotations

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
    warn_partial,
)
from datamodules.datasets.celebdf import TEST_LIST, identities, read_list_lines, video_stem

SCENARIOS: dict[str, tuple[str, ...]] = {
    "FaceSwap": (
        "Celeb-DF",
        "BlendFace",
        "GHOST",
        "HifiFace",
        "InSwapper",
        "MobileFaceSwap",
        "SimSwap",
        "UniFace",
    ),
    "FaceReenact": ("DaGAN", "FSRT", "HyperReenact", "LIA", "LivePortrait", "MCNET", "TPSMM"),
    "TalkingFace": ("AniTalker", "EchoMimic", "EDTalk", "FLOAT", "IP_LAP", "Real3DPortrait", "SadTalker"),
}
REALS = ("Celeb-real", "YouTube-real")


def _label_convention(listed: dict[str, int], label_of: dict[str, int], path: Path) -> None:
    """The README does not say which digit means real: accept Celeb-DF's (1 = real) or the reverse, as
    long as the whole file agrees with the folders under ONE of them."""
    celebdf = [rel for rel, d in listed.items() if d != 1 - label_of[rel]]
    usual = [rel for rel, d in listed.items() if d != label_of[rel]]
    if celebdf and usual:
        raise DatasetLayoutError(
            f"{path}: the label digits contradict the folders under both conventions: {len(celebdf)} line(s) "
            f"under Celeb-DF's (1 = REAL, 0 = FAKE), e.g. {celebdf[:3]}; {len(usual)} under 1 = FAKE, "
            f"e.g. {usual[:3]}"
        )


@register_layout("celebdfpp")
class CelebDFppAdapter(Adapter):
    """Celeb-DF++ as released (see the module docstring).

    Expected layout::

        Celeb-real/id0_0000.mp4
        YouTube-real/00000.mp4
        Celeb-synthesis/<Scenario>/<Method>/id0_id1_0000.mp4   # Scenario: FaceSwap, FaceReenact, TalkingFace
        List_of_testing_videos.txt      # "<digit> Celeb-synthesis/FaceSwap/BlendFace/id1_id0_0007.mp4"

    ``method`` is the method folder (``Celeb-DF`` is the original Celeb-DF face swap), ``source_label``
    ``<Scenario>/<Method>``; reals have method ``real``. Test = the listed videos (a missing one is an
    error; the folder decides the label and the digits must agree with it under one convention for the
    whole file); every other video is train, minus a val carved as Celeb-DF v2's (``val_fraction`` 0.1,
    ``seed`` 0, by identity: target AND source). A scenario folder that is absent is a
    ``PartialDatasetWarning`` (counts per split and method).
    """

    default_name = "CDF++"

    def enumerate(
        self,
        root: str | Path,
        dataset: str | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        **_: object,
    ) -> list[VideoRecord]:
        """The records of the Celeb-DF++ download at ``root`` (layout and options: the class docstring)."""
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout, "Celeb-DF++ root")
        synth = require_dir(
            root / "Celeb-synthesis", self.layout, "fakes: Celeb-synthesis/<Scenario>/<Method>/"
        )
        listed = read_list_lines(require_file(root / TEST_LIST, self.layout, "official test list"))
        found: dict[str, tuple[Path, str, str]] = {}  # rel -> (video, method, source_label)
        for folder in REALS:
            for v in videos_in(require_dir(root / folder, self.layout, "reals")):
                found[f"{folder}/{v.name}"] = (v, "real", folder)
        absent = [s for s in SCENARIOS if not (synth / s).is_dir()]
        for scen in (synth / s for s in SCENARIOS if s not in absent):
            for mdir in sorted(p for p in scen.iterdir() if p.is_dir()):
                for v in videos_in(mdir):
                    found[f"Celeb-synthesis/{scen.name}/{mdir.name}/{v.name}"] = (
                        v,
                        mdir.name,
                        f"{scen.name}/{mdir.name}",
                    )
        if len(absent) == len(SCENARIOS):
            raise DatasetLayoutError(
                f"layout 'celebdfpp': none of the scenario folders {list(SCENARIOS)} under {synth}"
            )
        missing = sorted(set(listed) - set(found))
        if missing:
            raise DatasetLayoutError(f"{root / TEST_LIST}: " + missing_report(missing, "listed test videos"))
        _label_convention(listed, {rel: int(found[rel][1] != "real") for rel in listed}, root / TEST_LIST)
        train = {
            rel: identities(rel.split("/")[0], v.stem)
            for rel, (v, _, _) in found.items()
            if rel not in listed
        }
        val, left_out = carve_val(train, val_fraction, seed)
        out = []
        for rel, (v, method, src) in sorted(found.items()):
            if rel in left_out:
                continue
            split = "test" if rel in listed else "val" if rel in val else "train"
            stem = video_stem(src, v.stem) if method == "real" else v.stem
            out.append(
                VideoRecord(name, split, int(method != "real"), method, "", f"{name}/{method}/{stem}", v,
                            source_label=src)
            )  # fmt: skip
        warn_partial(self.layout, root, out, [f"{synth / s} (scenario)" for s in absent])
        return out
