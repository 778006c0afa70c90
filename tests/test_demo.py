"""The embedded demo benchmark: determinism, official layouts, exact masks, resume, refusals.

One ``quick`` demo (the test-only config: 8 frames per clip, one FF clip per identity) is generated per
session; the determinism and resume tests generate it again elsewhere and compare checksums.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from datamodules import demo
from datamodules.demo_gen import plan as P
from datamodules.demo_gen import sources
from datamodules.demo_gen.domains import DOMAINS, FF_METHODS
from datamodules.demo_gen.manipulations import MASK_THRESHOLD, FakeSpec, StaticFake, hull_mask
from datamodules.demo_gen.sources import IDENTITIES, SPLIT_OF
from datamodules.demo_gen.video import random_clip, read_video

CFG = P.CONFIGS["quick"]


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "a"
    res = demo.generate(out, seed=0, config="quick", log=lambda s: None)
    assert res.status == "generated"
    return out


@pytest.fixture(scope="session")
def identities():
    return {i.name: i for i in sources.load_identities()}


def _videos(root: Path) -> list[Path]:
    return sorted(root.rglob("*.mp4"))


# ---------------------------------------------------------------- determinism and idempotence


def test_same_seed_gives_identical_bytes(demo_dir, tmp_path):
    res = demo.generate(tmp_path / "b", seed=0, config="quick", log=lambda s: None)
    assert res.written == len(demo.plan_all(0, CFG)[0])
    assert (tmp_path / "b" / demo.MANIFEST).read_bytes() == (demo_dir / demo.MANIFEST).read_bytes()
    assert demo.verify(tmp_path / "b") == []


def test_another_seed_changes_the_videos(identities):
    job = next(j for j in demo.plan_all(0, CFG)[0] if j.method == "FaceSwap")
    f0, m0 = demo._render(job, 0, CFG, identities)
    f1, m1 = demo._render(job, 1, CFG, identities)
    assert len(f0) == CFG.frames and len(m0) == CFG.frames
    assert not all(np.array_equal(a, b) for a, b in zip(f0, f1, strict=True))
    f0b, m0b = demo._render(job, 0, CFG, identities)
    assert all(np.array_equal(a, b) for a, b in zip(f0, f0b, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(m0, m0b, strict=True))


def test_rerun_is_a_verified_noop(demo_dir):
    mtimes = {p: p.stat().st_mtime_ns for p in demo_dir.rglob("*") if p.is_file()}
    res = demo.generate(demo_dir, seed=0, config="quick", log=lambda s: None)
    assert (res.status, res.written) == ("verified", 0)
    assert {p: p.stat().st_mtime_ns for p in demo_dir.rglob("*") if p.is_file()} == mtimes


def test_manifest_covers_every_file_and_checks(demo_dir):
    rows = demo.read_manifest(demo_dir)
    listed = set(rows)
    on_disk = {
        str(p.relative_to(demo_dir))
        for p in demo_dir.rglob("*")
        if p.is_file() and p.name not in (demo.MANIFEST, demo.COMPLETE, demo.STATE)
    }
    assert listed == on_disk
    assert "datasets.yaml" in listed and demo.INFO in listed


def test_corrupted_file_is_regenerated_identically(demo_dir, tmp_path):
    copy = tmp_path / "c"
    shutil.copytree(demo_dir, copy)
    victim = (
        copy
        / "demo-FF/manipulated_sequences/FaceSwap/c23/videos"
        / sorted(p.name for p in (copy / "demo-FF/manipulated_sequences/FaceSwap/c23/videos").iterdir())[0]
    )
    victim.write_bytes(b"not a video")
    rel = str(victim.relative_to(copy))
    assert demo.verify(copy) == [rel]
    res = demo.generate(copy, seed=0, config="quick", log=lambda s: None)
    assert (res.status, res.written) == ("repaired", 1)
    assert demo.verify(copy) == []


# ---------------------------------------------------------------- layouts and labels


def _ff_identity(video_id: str) -> str:
    return IDENTITIES[int(video_id) % 10]  # documented in demo_gen.plan: id = clip * 10 + identity index


def test_ffpp_layout_and_identity_disjoint_splits(demo_dir):
    root = demo_dir / "demo-FF"
    seen: dict[str, str] = {}
    for split in P.SPLITS:
        pairs = json.loads((root / "splits" / f"{split}.json").read_text())
        assert pairs and all(len(p) == 2 and all(len(v) == 3 and v.isdigit() for v in p) for p in pairs)
        for a, b in pairs:
            for v in (a, b):
                assert (root / f"original_sequences/youtube/c23/videos/{v}.mp4").is_file()
                assert seen.setdefault(v, split) == split, f"video {v} in two splits"
            assert _ff_identity(a) != _ff_identity(b)
            for m in FF_METHODS:
                for name in (f"{a}_{b}", f"{b}_{a}"):
                    assert (root / f"manipulated_sequences/{m}/c23/videos/{name}.mp4").is_file()
                    assert (root / f"manipulated_sequences/{m}/masks/videos/{name}.mp4").is_file()
        idents = {_ff_identity(v) for v, s in seen.items() if s == split}
        assert all(SPLIT_OF[n] == split for n in idents)
    originals = {p.stem for p in (root / "original_sequences/youtube/c23/videos").iterdir()}
    assert originals == set(seen), "every original belongs to exactly one split"
    assert sorted(p.name for p in (root / "manipulated_sequences").iterdir()) == sorted(FF_METHODS)


def test_celebdf_layout_and_its_inverted_label_convention(demo_dir):
    root = demo_dir / "demo-CDF"
    listed = [line.split(" ") for line in (root / "List_of_testing_videos.txt").read_text().splitlines()]
    assert listed and all(lab in ("0", "1") for lab, _ in listed)
    for lab, rel in listed:
        assert (root / rel).is_file(), rel
        # Celeb-DF's own convention: 1 = REAL, 0 = FAKE
        assert lab == ("0" if rel.startswith("Celeb-synthesis/") else "1"), rel
    test_paths = {rel for _, rel in listed}
    test_ids = {f"id{IDENTITIES.index(n)}" for n, s in SPLIT_OF.items() if s == "test"}
    for p in _videos(root):
        rel = str(p.relative_to(root))
        if rel.startswith("YouTube-real/"):
            continue
        ids = set(p.stem.split("_")[:-1])
        assert (rel in test_paths) == bool(ids & test_ids), f"{rel}: test identities only in the test list"
    assert {p.parent.name for p in _videos(root)} == {"Celeb-real", "Celeb-synthesis", "YouTube-real"}
    for p in (root / "Celeb-synthesis").iterdir():
        t, s, k = p.stem.split("_")
        assert t != s and (root / f"Celeb-real/{t}_{k}.mp4").is_file()


def test_dfdc_layout_and_labels(demo_dir):
    root = demo_dir / "demo-DFDC"
    meta = json.loads((root / "dfdc_train_part_0/metadata.json").read_text())
    assert {v["label"] for v in meta.values()} == {"REAL", "FAKE"}
    for name, v in meta.items():
        assert (root / "dfdc_train_part_0" / name).is_file() and v["split"] == "train"
        if v["label"] == "FAKE":
            assert meta[v["original"]]["label"] == "REAL"
        else:
            assert v["original"] is None
    lines = (root / "test/labels.csv").read_text().splitlines()
    assert lines[0] == "filename,label"
    truth = {Path(j.relpath).name: j.label for j in demo.plan_all(0, CFG)[0] if j.domain == "demo-DFDC"}
    rows = [r.split(",") for r in lines[1:]]
    assert {int(lab) for _, lab in rows} == {0, 1}
    for name, lab in rows:
        assert (root / "test/videos" / name).is_file()
        assert int(lab) == truth[name]  # 1 = fake
    assert sorted(p.name for p in (root / "test/videos").iterdir()) == sorted(n for n, _ in rows)


def test_datasets_yaml_names_the_three_domains(demo_dir):
    cfg = yaml.safe_load((demo_dir / "datasets.yaml").read_text())
    assert cfg["processed_root"] == "processed"
    assert {k: v["layout"] for k, v in cfg["datasets"].items()} == {
        "demo-FF": "ffpp",
        "demo-CDF": "celebdf_v2",
        "demo-DFDC": "dfdc",
    }
    assert cfg["datasets"]["demo-FF"]["compression"] == "c23"
    for v in cfg["datasets"].values():
        assert (demo_dir / v["root"]).is_dir()
    assert "NOT a ranking" in (demo_dir / "datasets.yaml").read_text()


def test_every_video_decodes_with_the_domain_resolution(demo_dir):
    for name, d in DOMAINS.items():
        vids = _videos(demo_dir / name)
        assert vids
        for p in vids[:: max(1, len(vids) // 6)]:
            frames = read_video(p)
            assert len(frames) == CFG.frames and frames[0].shape == (d.size, d.size, 3), p


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize(
    "spec",
    [
        FakeSpec("swap", feather=0.03),
        FakeSpec("region", region="eyes", feather=0.02),
        FakeSpec("region", region="mouth", feather=0.02, upsample=2, artifact=0.3),
        FakeSpec("selfblend", region="lower", colour=0.0, jitter=(8, -5, 3, 1.1, 1.2, 0.01, -0.01, 1.02)),
        FakeSpec("upsample", colour=0.0, upsample=3, artifact=0.3),
    ],
    ids=lambda s: f"{s.kind}-{s.region}",
)
def test_mask_is_exact_for_every_manipulation(spec, identities):
    tgt, src = identities["astronaut"], identities["t1_c"]
    size = 128
    fake = StaticFake(spec, tgt.portrait, tgt.landmarks, src.portrait, src.landmarks, size)
    clip = random_clip(np.random.default_rng(3), 4, size, 0.1)
    base = cv2.resize(tgt.portrait, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    for motion in clip.motion:
        frame = cv2.warpAffine(base, motion, (size, size), borderMode=cv2.BORDER_REPLICATE)
        out, alpha = fake.apply(frame, motion, camera_blur=0.0)
        mask = alpha > MASK_THRESHOLD
        diff = np.abs(out - frame).max(axis=2)
        assert not (diff > 0.02 * 255 + 1e-3)[~mask].any(), "a pixel changed outside the mask"
        assert diff[mask].mean() > 2.0, "the mask covers pixels that did not change"
        lm = tgt.landmarks * (size / tgt.portrait.shape[0]) @ motion[:, :2].T + motion[:, 2]
        face = cv2.dilate(hull_mask(lm, (size, size)), np.ones((15, 15), np.uint8))
        assert not (mask & (face == 0)).any(), "mask reaches far from the face"


def test_mask_videos_match_the_changes_in_the_written_fakes(demo_dir):
    root = demo_dir / "demo-FF"
    pairs = json.loads((root / "splits/test.json").read_text())
    a, b = pairs[0]
    orig = np.stack(read_video(root / f"original_sequences/youtube/c23/videos/{a}.mp4")).astype(np.int16)
    for m in FF_METHODS:
        fake = np.stack(read_video(root / f"manipulated_sequences/{m}/c23/videos/{a}_{b}.mp4")).astype(
            np.int16
        )
        masks = (
            np.stack(read_video(root / f"manipulated_sequences/{m}/masks/videos/{a}_{b}.mp4"))[..., 0] > 127
        )
        assert masks.shape == fake.shape[:3] and masks.any(axis=(1, 2)).all(), m
        diff = np.abs(fake - orig).max(axis=3)
        far = np.stack([cv2.dilate(k.astype(np.uint8), np.ones((17, 17), np.uint8)) == 0 for k in masks])
        core = np.stack([cv2.erode(k.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0 for k in masks])
        assert far.mean() > 0.3, f"{m}: mask covers most of the frame"
        assert np.percentile(diff[far], 99) <= 12, f"{m}: pixels far from the mask changed"
        assert diff[core].mean() > 2 * max(1.0, diff[far].mean()), f"{m}: nothing changed inside the mask"


# ---------------------------------------------------------------- resume and bad input


def test_interrupted_generation_resumes_to_identical_files(demo_dir, tmp_path, monkeypatch):
    out = tmp_path / "r"
    out.mkdir()
    (out / "old.txt").write_text("replaced with --overwrite")
    real_write = demo.write_video_atomic
    calls = {"n": 0}

    def flaky(frames, final, staging):
        calls["n"] += 1
        if calls["n"] == 40:
            (staging / "half-written.mp4").write_bytes(b"\x00\x00\x00 ftypisom truncated")
            raise KeyboardInterrupt("simulated interruption")
        real_write(frames, final, staging)

    monkeypatch.setattr(demo, "write_video_atomic", flaky)
    with pytest.raises(KeyboardInterrupt):
        demo.generate(out, seed=0, config="quick", overwrite=True, log=lambda s: None)
    assert not (out / "old.txt").exists()
    assert not (out / demo.COMPLETE).exists() and demo.verify(out) == [demo.MANIFEST]
    done = [p for p in _videos(out) if demo.STAGING not in p.parts]
    assert 0 < len(done) < 40
    for p in done:  # whatever sits at a final path is complete
        assert len(read_video(p)) == CFG.frames, p
    monkeypatch.setattr(demo, "write_video_atomic", real_write)
    res = demo.generate(out, seed=0, config="quick", log=lambda s: None)
    assert res.status == "resumed" and res.skipped > 0
    assert res.skipped + res.written == len(demo.plan_all(0, CFG)[0])
    assert not (out / demo.STAGING).exists()
    assert (out / demo.MANIFEST).read_bytes() == (demo_dir / demo.MANIFEST).read_bytes()


def test_refuses_a_foreign_directory(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(demo.ForeignOutputError, match=r"thesis\.tex.*--overwrite"):
        demo.generate(tmp_path, config="quick", log=lambda s: None)
    assert (tmp_path / "thesis.tex").read_text() == "precious"
    assert demo.main(["--out", str(tmp_path), "--config", "quick"]) == 2


def test_overwrite_refuses_a_git_repository(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "code.py").write_text("x = 1")
    with pytest.raises(demo.ForeignOutputError, match="git repository"):
        demo.generate(tmp_path, config="quick", overwrite=True, log=lambda s: None)
    assert (tmp_path / "code.py").exists()


def test_refuses_a_demo_of_another_seed(demo_dir):
    with pytest.raises(demo.DemoMismatchError, match="--seed 0"):
        demo.generate(demo_dir, seed=1, config="quick", log=lambda s: None)


def test_missing_photo_package_names_the_pip_install(monkeypatch):
    real = sources.importlib.util.find_spec
    monkeypatch.setattr(
        sources.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "insightface" else real(name, *a),
    )
    with pytest.raises(sources.DemoSourceError, match="pip install insightface"):
        sources.photo_path("insightface", "insightface/data/images/t1.jpg")


def test_unknown_config_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="full, quick"):
        demo.generate(tmp_path / "x", config="huge")


# ---------------------------------------------------------------- the real adapters and preprocessing


def _enumerate_from_yaml(demo_dir: Path) -> dict[str, list]:
    from datamodules.datasets import enumerate_dataset

    cfg = yaml.safe_load((demo_dir / "datasets.yaml").read_text())
    out = {}
    for name, spec in cfg["datasets"].items():
        opts = {k: v for k, v in spec.items() if k not in ("layout", "root")}
        out[name] = enumerate_dataset(spec["layout"], demo_dir / spec["root"], dataset=name, **opts)
    return out


def test_real_adapters_enumerate_the_demo_without_special_cases(demo_dir, recwarn):
    records = _enumerate_from_yaml(demo_dir)
    assert not [w for w in recwarn if "datamodules" in str(w.filename)], [str(w.message) for w in recwarn]
    jobs = demo.plan_all(0, CFG)[0]
    test_idents = {n for n, s in SPLIT_OF.items() if s == "test"}
    for name, recs in records.items():
        mine = {str(demo_dir / j.relpath): j for j in jobs if j.domain == name}
        assert {str(r.path) for r in recs} == set(mine), name  # every video, nothing else
        for r in recs:
            j = mine[str(r.path)]
            assert r.label == j.label, r.video_id
            assert (r.split == "test") == (j.split == "test"), r.video_id
            assert (j.target in test_idents) == (r.split == "test"), f"{r.video_id}: identity leak"
            if name == "demo-FF":
                assert r.split == j.split and r.compression == "c23"
                assert (r.mask_path is not None) == bool(r.label)
                if r.label:
                    assert str(r.mask_path) == str(demo_dir / j.mask_relpath)
        assert {r.split for r in recs} >= {"train", "test"}


def test_real_preprocessing_finds_the_faces_and_reads_the_masks(demo_dir, tmp_path):
    import pandas as pd

    from datamodules.preprocess import preprocess_dataset

    # one demo-FF test pair (two originals, two FaceSwap fakes + masks) in a copy of the layout
    src, ff = demo_dir / "demo-FF", tmp_path / "ff"
    a, b = json.loads((src / "splits/test.json").read_text())[0]
    rels = [f"original_sequences/youtube/c23/videos/{v}.mp4" for v in (a, b)]
    rels += [
        f"manipulated_sequences/FaceSwap/{k}/videos/{n}.mp4"
        for k in ("c23", "masks")
        for n in (f"{a}_{b}", f"{b}_{a}")
    ]
    for rel in rels:
        (ff / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, ff / rel)
    (ff / "splits").mkdir()
    for split in P.SPLITS:
        (ff / "splits" / f"{split}.json").write_text(json.dumps([[a, b]] if split == "test" else []))
    out = tmp_path / "processed"
    m = pd.read_parquet(preprocess_dataset("demo-FF", "ffpp", ff, out, frames=2, size=64, progress=False))
    assert len(m) == 8 and (m["status"] == "ok").all(), m[["video_id", "status", "reason"]]
    for _, row in m.iterrows():
        if row["label"] == 1:
            mask = cv2.imread(str(out / "demo-FF" / row["mask_path"]), cv2.IMREAD_GRAYSCALE)
            assert mask is not None and 0.05 < (mask > 127).mean() < 0.9, row["video_id"]
        else:
            assert not row["mask_path"]
    cfg = yaml.safe_load((demo_dir / "datasets.yaml").read_text())["datasets"]["demo-DFDC"]
    path = preprocess_dataset(
        "demo-DFDC", cfg["layout"], demo_dir / cfg["root"], out, frames=2, size=64, limit=3, progress=False
    )
    m = pd.read_parquet(path)
    # MTCNN misses a few frames of strongly pose-mismatched swaps (README); reals must always be found
    assert len(m) == 6 and set(m["status"]) <= {"ok", "no_face"}, m[["video_id", "status", "reason"]]
    assert (m.loc[m["label"] == 0, "status"] == "ok").all() and (m["status"] == "ok").sum() >= 4


def test_a_video_that_does_not_decode_completely_is_never_renamed_into_place(tmp_path, monkeypatch):
    from datamodules.demo_gen import video

    frames = [np.full((32, 32, 3), i * 20, np.uint8) for i in range(6)]
    monkeypatch.setattr(video, "read_video", lambda p: [frames[0]] * 3)  # as if the disk filled up
    final = tmp_path / "videos" / "000.mp4"
    with pytest.raises(video.VideoWriteError, match=r"3 of 6 frames.*000\.mp4|000\.mp4.*3 of 6 frames"):
        video.write_video_atomic(frames, final, tmp_path / ".staging")
    assert not final.exists() and not list((tmp_path / ".staging").iterdir())
    monkeypatch.undo()
    video.write_video_atomic(frames, final, tmp_path / ".staging")
    assert len(read_video(final)) == 6
