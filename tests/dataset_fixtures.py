"""Tiny copies of official dataset layouts and of the DeepfakeBench JSONs written for them.

Each builder reproduces the structure its owner ships or writes (names, nesting, key shapes, line
formats) with empty or tiny generated files; adapters only list files, so emptiness does not matter for
enumeration. Sources (read, never copied):

* FaceForensics++: ``ondyari/FaceForensics`` ``dataset/splits/{train,val,test}.json`` (commit b952e41):
  a JSON list of two-string id lists, indented by 2; the download's ``original_sequences/youtube/<c>/videos``
  and ``manipulated_sequences/<Method>/<c>/videos`` + ``masks/videos``.
* DeepfakeBench: ``SCLBD/DeepfakeBench`` commit 8a4a7bf, ``preprocessing/preprocess.py`` (crops saved as
  ``<sub dataset>/frames/<video stem>/<frame:03d>.png``, landmarks as ``.../landmarks/<stem>/<frame:03d>.npy``,
  DFDC read from ``DFDC/test`` and ``DFDC/train/dfdc_train_part_<N>``) and ``preprocessing/rearrange.py``
  (the JSON each family gets, including its irregularities: Celeb-DF lists every video in train and the
  test list in val and test, re-creating the real label's dict for each real folder; DFDC's test loop
  overwrites ``val`` with ONE video dict that the train loop then adds videos to; DFDC-P's val IS its
  test; DFD and UADFV are in all three splits; frame lists come in directory-scan order).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

DFB = "SCLBD/DeepfakeBench@8a4a7bf (preprocessing/rearrange.py)"
FRAME_IDS = (0, 44, 88, 1019)  # 32 frames of a long video: string order differs from numeric order


def touch(root: Path, *rels: str) -> Path:
    for r in rels:
        p = root / r
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    return root


def dfb_frames(video_root: Path, stem: str, ids=FRAME_IDS, landmarks: bool = True) -> list[str]:
    """DeepfakeBench's crops of one video under ``video_root/frames/<stem>/`` (+ ``landmarks/``), listed in
    a directory-scan order (shuffled, fixed seed), as rearrange.py lists them."""
    out = []
    for i in ids:
        f = video_root / "frames" / stem / f"{i:03d}.png"
        touch(f.parent, f.name)
        if landmarks:
            touch(video_root / "landmarks" / stem, f"{i:03d}.npy")
        out.append(str(f))
    random.Random(stem).shuffle(out)
    return out


def windows(paths: list[str], rgb: Path, prefix: str = "D:\\DeepfakeBench\\datasets\\rgb") -> list[str]:
    """The paths as the JSON's authors' Windows machine wrote them (``D:\\...\\rgb\\<rest>``)."""
    return [prefix + "\\" + str(Path(p).relative_to(rgb)).replace("/", "\\") for p in paths]


# ---- FaceForensics++ ------------------------------------------------------------------------------------

FF_PAIRS = {"train": [("000", "001"), ("002", "003")], "val": [("004", "005")], "test": [("006", "007")]}


def write_ff_splits(folder: Path, pairs=FF_PAIRS) -> None:
    """The official split files, formatted like the FaceForensics repository's (indent 2)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, ps in pairs.items():
        (folder / f"{split}.json").write_text(json.dumps([list(p) for p in ps], indent=2))


def ffpp_download(root: Path, methods=("Deepfakes",), comp: str = "c23", splits: str = "splits") -> Path:
    """FF++ as downloaded: reals, fakes ``a_b`` and ``b_a`` of every pair, mask videos, split files in
    ``root/splits`` (``splits="splits"``), in ``root`` (DeepfakeBench's placement) or nowhere (``""``)."""
    ids = [i for ps in FF_PAIRS.values() for p in ps for i in p]
    touch(root, *[f"original_sequences/youtube/{comp}/videos/{i}.mp4" for i in ids])
    for m in methods:
        for ps in FF_PAIRS.values():
            for a, b in ps:
                for x, y in ((a, b), (b, a)):
                    touch(root, f"manipulated_sequences/{m}/{comp}/videos/{x}_{y}.mp4")
                    touch(root, f"manipulated_sequences/{m}/masks/videos/{x}_{y}.mp4")
    if splits:
        write_ff_splits(root / "splits" if splits == "splits" else root)
    return root


def ffpp_deepfakebench(rgb: Path, out: Path, method: str = "Deepfakes", label: str = "FF-DF") -> Path:
    """``<label>.json`` as rearrange.py writes it for FaceForensics++ (``{label: {"FF-real": ..., label:
    ...}}``, every split nested by compression, fakes with a ``masks`` list), over frames under
    ``rgb/FaceForensics++`` (the FF++ tree with ``frames/``, ``landmarks/``, ``masks/`` beside ``videos/``)."""
    ff = rgb / "FaceForensics++"
    mode = {}
    for split, ps in FF_PAIRS.items():
        for a, b in ps:
            mode[a] = mode[b] = mode[f"{a}_{b}"] = mode[f"{b}_{a}"] = split
    real = {s: {"c23": {}} for s in ("train", "test", "val")}
    fake = {s: {"c23": {}} for s in ("train", "test", "val")}
    yt = ff / "original_sequences/youtube/c23"
    for v in sorted({k for k in mode if "_" not in k}):
        real[mode[v]]["c23"][v] = {"label": "FF-real", "frames": windows(dfb_frames(yt, v), rgb)}
    md = ff / f"manipulated_sequences/{method}/c23"
    for v in sorted(k for k in mode if "_" in k):
        frames = dfb_frames(md, v)
        masks = [str(md / "masks" / v / Path(f).name) for f in frames]
        for m in masks:
            touch(Path(m).parent, Path(m).name)
        fake[mode[v]]["c23"][v] = {
            "label": label,
            "frames": windows(frames, rgb),
            "masks": windows(masks, rgb),
        }
    path = out / f"{label}.json"
    path.write_text(json.dumps({label: {"FF-real": real, label: fake}}))
    return path


# ---- DFD (inside the FF++ download) ------------------------------------------------------------------------

DFD_REALS = ("01__walking", "02__talking")
DFD_FAKES = ("01_02__walking__ABC", "02_01__talking__XYZ")


def dfd_download(root: Path) -> Path:
    touch(root, *[f"original_sequences/actors/c23/videos/{v}.mp4" for v in DFD_REALS])
    touch(root, *[f"manipulated_sequences/DeepFakeDetection/c23/videos/{v}.mp4" for v in DFD_FAKES])
    return root


def dfd_deepfakebench(rgb: Path, out: Path) -> Path:
    """``DeepFakeDetection.json``: DFD_real and DFD_fake listed in all three splits under ``c23``."""
    ff = rgb / "FaceForensics++"
    data: dict = {"DFD_fake": {}, "DFD_real": {}}
    for label, sub, names in (
        ("DFD_real", "original_sequences/actors/c23", DFD_REALS),
        ("DFD_fake", "manipulated_sequences/DeepFakeDetection/c23", DFD_FAKES),
    ):
        videos = {v: {"label": label, "frames": windows(dfb_frames(ff / sub, v), rgb)} for v in names}
        if label == "DFD_fake":
            videos = {v: {**info, "masks": []} for v, info in videos.items()}
        data[label] = {s: {"c23": videos} for s in ("train", "val", "test")}
    path = out / "DeepFakeDetection.json"
    path.write_text(json.dumps({"DeepFakeDetection": data}))
    return path


# ---- Celeb-DF v2 ----------------------------------------------------------------------------------------


def celebdf_download(root: Path, n_ids: int = 8, clips: int = 2, youtube: int = 6) -> Path:
    """Celeb-DF v2: reals ``id<i>_<k:04d>``, fakes ``id<t>_id<s>_<k:04d>`` (s = t+1, t+2), YouTube reals
    ``<k:05d>``, ``List_of_testing_videos.txt`` in its own convention (``1`` = REAL, ``0`` = FAKE)."""
    reals = [f"Celeb-real/id{i}_{k:04d}.mp4" for i in range(n_ids) for k in range(clips)]
    fakes = [
        f"Celeb-synthesis/id{i}_id{(i + d) % n_ids}_{k:04d}.mp4"
        for i in range(n_ids)
        for d in (1, 2)
        for k in range(clips)
    ]
    yt = [f"YouTube-real/{k:05d}.mp4" for k in range(youtube)]
    touch(root, *reals, *fakes, *yt)
    test = ["1 Celeb-real/id0_0000.mp4", "1 YouTube-real/00000.mp4", "0 Celeb-synthesis/id0_id1_0000.mp4"]
    (root / "List_of_testing_videos.txt").write_text("\n".join(test) + "\n")
    return root


def celebdf_deepfakebench(root: Path, out: Path) -> Path:
    """``Celeb-DF-v2.json`` as rearrange.py writes it: folders scanned in name order, each folder
    re-creating its label's dict (so the real train list keeps only the LAST real folder scanned,
    YouTube-real), then the test list added to ``test`` AND ``val``. Frame paths are absolute Linux paths
    found by ``glob`` (their order unspecified)."""
    data: dict = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = "CelebDFv2_real" if folder.name in ("Celeb-real", "YouTube-real") else "CelebDFv2_fake"
        data[label] = {"train": {}, "val": {}, "test": {}}
        for v in sorted(folder.glob("*.mp4")):
            data[label]["train"][v.stem] = {"label": label, "frames": dfb_frames(folder, v.stem)}
    for line in (root / "List_of_testing_videos.txt").read_text().splitlines():
        rel = line.split(" ")[1]
        label = "CelebDFv2_real" if "real" in line else "CelebDFv2_fake"
        stem = rel.split("/")[-1].split(".mp4")[0]
        frames = [str(p) for p in (root / rel.split("/")[0] / "frames" / stem).glob("*png")]
        data[label]["test"][stem] = {"label": label, "frames": frames}
        data[label]["val"][stem] = {"label": label, "frames": frames}
    path = out / "Celeb-DF-v2.json"
    path.write_text(json.dumps({"Celeb-DF-v2": data}))
    return path


# ---- DFDC -----------------------------------------------------------------------------------------------


def dfdc_download(root: Path, placement: str = "train", n: int = 6) -> Path:
    """DFDC: one training part ``dfdc_train_part_0`` (``metadata.json``: REAL/FAKE, ``original``) placed
    at ``root``, in ``root/train`` (DeepfakeBench) or in ``root/dfdc_train_full``; the test set
    ``test/labels.csv`` (``filename,label``, 1 = fake) with its videos in ``test/videos``."""
    part = (root / placement if placement != "." else root) / "dfdc_train_part_0"
    meta = {}
    for i in range(n):
        meta[f"real{i:05d}a.mp4"] = {"label": "REAL", "split": "train", "original": None}
        meta[f"fake{i:05d}a.mp4"] = {"label": "FAKE", "split": "train", "original": f"real{i:05d}a.mp4"}
        meta[f"fake{i:05d}b.mp4"] = {"label": "FAKE", "split": "train", "original": f"real{i:05d}a.mp4"}
    touch(part, *meta)
    (part / "metadata.json").write_text(json.dumps(meta))
    labels = [("aalscayrfi.mp4", 0), ("aamrozxzsq.mp4", 1), ("aaoqanfmgd.mp4", 1), ("abajdarwnl.mp4", 0)]
    touch(root / "test/videos", *[f for f, _ in labels])
    with (root / "test/labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "label"])
        w.writerows(labels)
    return root


def dfdc_deepfakebench(root: Path, out: Path, with_train: bool = True) -> Path:
    """``DFDC.json`` as rearrange.py writes it, folders scanned in name order (``test`` before
    ``train``): the test loop sets ``val`` to ONE video dict per label (the last test row's), the train
    loop then adds its videos to ``train`` and to that same ``val`` dict. ``with_train=False`` is the
    released DFDC.json ("Only Test Data")."""
    data = {label: {"train": {}, "test": {}, "val": {}} for label in ("DFDC_Real", "DFDC_Fake")}
    with (root / "test/labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            vid = row["filename"].split(".mp4")[0]
            label = ["DFDC_Real", "DFDC_Fake"][int(row["label"])]
            frames = dfb_frames(root / "test", vid)
            data[label]["test"][vid] = {"label": label, "frames": frames}
            data[label]["val"] = {"label": label, "frames": frames}
    if with_train:
        for part in sorted((root / "train").iterdir()):
            meta = json.loads((part / "metadata.json").read_text())
            for name in sorted(meta):
                vid = name.split(".")[0]
                label = "DFDC_Real" if meta[name]["label"] == "REAL" else "DFDC_Fake"
                info = {"label": label, "frames": dfb_frames(part, vid)}
                data[label]["train"][vid] = info
                data[label]["val"][vid] = info
    path = out / "DFDC.json"
    path.write_text(json.dumps({"DFDC": data}))
    return path


# ---- DFDC-Preview ---------------------------------------------------------------------------------------

DFDCP_ENTRIES = {
    "method_A/1224068/1224068_A/1255229_1224068_A_001.mp4": {"label": "fake", "set": "train"},
    "method_B/1224068/1224068_B/1255229_1224068_B_001.mp4": {"label": "fake", "set": "train"},
    "original_videos/1224068/1224068_A_001.mp4": {"label": "real", "set": "train"},
    "method_A/643049/643049_A/1955231_643049_A_003.mp4": {"label": "fake", "set": "train"},
    "original_videos/643049/643049_A_003.mp4": {"label": "real", "set": "train"},
    "method_A/710251/710251_A/2000101_710251_A_002.mp4": {"label": "fake", "set": "train"},
    "original_videos/710251/710251_A_002.mp4": {"label": "real", "set": "train"},
    "method_B/916313/916313_B/1955231_916313_B_004.mp4": {"label": "fake", "set": "test"},
    "original_videos/916313/916313_B_004.mp4": {"label": "real", "set": "test"},
}


def dfdcp_download(root: Path) -> Path:
    """DFDC-Preview: ``dataset.json`` (relative path -> label, set) and the videos it lists."""
    touch(root, *DFDCP_ENTRIES)
    (root / "dataset.json").write_text(json.dumps(DFDCP_ENTRIES))
    return root


def dfdcp_deepfakebench(root: Path, out: Path) -> Path:
    """``DFDCP.json``: frames under ``<method folder>/frames/<file stem>/``, labels DFDCP_Real/FakeA/FakeB,
    ``set`` as the split, then ``val`` set to (the same object as) ``test``."""
    data = {
        label: {"train": {}, "test": {}, "val": {}} for label in ("DFDCP_Real", "DFDCP_FakeA", "DFDCP_FakeB")
    }
    for key, info in json.loads((root / "dataset.json").read_text()).items():
        index, vid = key.split("/")[0], key.split("/")[-1].split(".")[0]
        frames = dfb_frames(root / index, vid)
        label = {"original_videos": "DFDCP_Real", "method_A": "DFDCP_FakeA", "method_B": "DFDCP_FakeB"}[index]
        data[label][info["set"]][vid] = {"label": label, "frames": frames}
    for label in data:
        data[label]["val"] = data[label]["test"]
    path = out / "DFDCP.json"
    path.write_text(json.dumps({"DFDCP": data}))
    return path


# ---- UADFV ----------------------------------------------------------------------------------------------

UADFV = {"real": ("0000", "0001"), "fake": ("0000_fake", "0001_fake")}


def uadfv_download(root: Path) -> Path:
    touch(root, *[f"{f}/{v}.mp4" for f, vs in UADFV.items() for v in vs])
    return root


def uadfv_deepfakebench(root: Path, out: Path) -> Path:
    """``UADFV.json``: UADFV_Real / UADFV_Fake, every video in train, test and val."""
    data: dict = {
        "UADFV_Real": {"train": {}, "test": {}, "val": {}},
        "UADFV_Fake": {"train": {}, "test": {}, "val": {}},
    }
    for folder, label in (("fake", "UADFV_Fake"), ("real", "UADFV_Real")):
        for v in UADFV[folder]:
            info = {"label": label, "frames": dfb_frames(root / folder, v)}
            for s in ("train", "test", "val"):
                data[label][s][v] = info
    path = out / "UADFV.json"
    path.write_text(json.dumps({"UADFV": data}))
    return path
