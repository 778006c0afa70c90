"""The protocol grids of DF40, Celeb-DF++ and Deepfake-Eval-2024 load, and name what the owners ship.

Method lists are the owners' folder names: YZY-stack/DF40 README "Folder Structure" (commit ce80816) and
OUC-VAS/Celeb-DF-PP README "Dataset Structure" (commit 8564a64).
"""

from __future__ import annotations

import pytest

from benchmark.runner.grid import load_grid
from datamodules.datasets import enumerate_dataset
from datamodules.datasets.celebdf_pp import SCENARIOS
from tests import dataset_fixtures as fx

# DF40 README "Folder Structure": DF40/<method>/{ff,cdf} and DF40/<method>/{fake,real}
DF40_DOMAIN_METHODS = {
    "fsgan", "faceswap", "simswap", "inswap", "blendface", "uniface", "mobileswap", "e4s", "facedancer", "fomm",
    "facevid2vid", "wav2lip", "MRAA", "one_shot_free", "pirender", "tpsm", "lia", "danet", "sadtalker", "mcnet",
    "VQGAN", "StyleGAN2", "StyleGAN3", "StyleGANXL", "sd2.1", "ddim", "PixArt", "DiT", "SiT",
}  # fmt: skip
DF40_OWN_METHODS = {
    "heygen",
    "MidJourney",
    "whichfaceisreal",
    "stargan",
    "starganv2",
    "styleclip",
    "e4e",
    "CollabDiff",
}
# README "Download DF40 data": the training release holds the "known" methods (FF++ domain)
DF40_FS = {
    "fsgan",
    "faceswap",
    "simswap",
    "inswap",
    "blendface",
    "uniface",
    "mobileswap",
    "e4s",
    "facedancer",
}


def _methods(sets) -> set[str]:
    return {m for s in sets for m in s.methods}


def test_df40_protocols():
    p1, p2 = load_grid("df40-p1-same-domain"), load_grid("df40-p2-cross-domain")
    p3, p4 = load_grid("df40-p3-cross-both"), load_grid("df40-p4-one-vs-all")
    for g in (p1, p2, p3):  # protocols 1-3 share the model trained on the FF++-domain face swaps
        assert [(s.dataset, set(s.methods)) for s in g.train_sets] == [("DF40-train", DF40_FS)]
    assert {s.dataset for s in p1.test_sets} == {"DF40-ff"} and {s.dataset for s in p2.test_sets} == {
        "DF40-cdf"
    }
    for g in (p1, p2):
        assert _methods(g.test_sets) == DF40_DOMAIN_METHODS
        assert sum(len(s.methods) for s in g.test_sets) == len(DF40_DOMAIN_METHODS)  # FS / FR / EFS, disjoint
    assert {s.dataset for s in p3.test_sets} == {f"DF40-{m}" for m in DF40_OWN_METHODS}
    assert [s.methods for s in p4.train_sets] == [s.methods for s in p4.test_sets]
    assert {m for s in p4.train_sets for m in s.methods} == DF40_DOMAIN_METHODS
    assert all(len(s.methods) == 1 for s in (*p4.train_sets, *p4.test_sets))


def test_celebdf_pp_protocols():
    gf, gfd = load_grid("celebdf-pp-gf"), load_grid("celebdf-pp-gfd")
    for g in (gf, gfd):
        assert [(s.name.split("/")[1], s.methods) for s in g.test_sets] == [
            (k, v) for k, v in SCENARIOS.items()
        ]
        assert {s.dataset for s in g.test_sets} == {"CDF++"}
    assert [(s.dataset, s.methods) for s in gf.train_sets] == [("CDF++", ("Celeb-DF",))]
    assert [s.dataset for s in gfd.train_sets] == ["FF++"]


def test_deepfake_eval_2024_protocol():
    g = load_grid("deepfake-eval-2024")
    assert [s.dataset for s in g.train_sets] == ["FF++", "DFE-2024"] and "DFE-2024" in g.datasets()


@pytest.mark.parametrize("method", sorted(DF40_FS))
def test_df40_train_set_of_each_face_swap_method_has_both_labels_and_val(tmp_path, method):
    """The training set protocols 1-4 configure (DF40_train + FF++ reals) restricted as the grids do."""
    from datamodules.datasets.base import require_splits

    fx.dfb_frames(tmp_path / f"dfdd/DF40_train/{method}/ff", "000_001", ids=(0,))
    fx.dfb_frames(tmp_path / f"dfdd/DF40_train/{method}/ff", "004_005", ids=(0,))
    ff = fx.ffpp_download(tmp_path / "FaceForensics++")
    recs = enumerate_dataset("df40", tmp_path / "dfdd/DF40_train", domains=["ff"], ffpp_root=ff)
    kept = [r for r in recs if r.label == 0 or r.method == method]
    require_splits(kept, ("train", "val"), "DF40-train", both_labels=True)
