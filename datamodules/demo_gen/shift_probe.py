"""A quick probe that the demo's domains shift an FF-trained detector's scores (a developer check).

``python -m datamodules.demo_gen.shift_probe [--demo data/demo]`` enumerates the demo with the real
adapters (from its ``datasets.yaml``), trains a three-layer CNN on centre crops of ``demo-FF``'s train
videos, scores every dataset's test split and prints per-dataset score means and the Cross-AUC matrix
``A[i, j] = AUC(real_i, fake_j)`` (scikit-learn), with the mean diagonal and mean off-diagonal.

It is not a detector of the suite (those live in ``detectors/`` and run through ``benchmark``): it only
shows, in about a minute on a CPU, that the demo's domains are built to produce the shift Cross-AUC
exposes. Centre crops stand in for the preprocessed face crops (the faces sit in the frame centre).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from sklearn.metrics import roc_auc_score
from torch import nn

from datamodules.demo_gen.video import read_video

CROP = 64


def _crops(path: Path, every: int) -> list[np.ndarray]:
    out = []
    for f in read_video(path)[::every]:
        h, w = f.shape[:2]
        face = f[int(h * 0.2) : int(h * 0.85), int(w * 0.175) : int(w * 0.825)]
        out.append(cv2.resize(face, (CROP, CROP), interpolation=cv2.INTER_AREA))
    return out


def _tensors(records: list, every: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for r in records:
        c = _crops(Path(r.path), every)
        xs += c
        ys += [r.label] * len(c)
    x = torch.tensor(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, torch.tensor(ys, dtype=torch.float32)


def _net() -> nn.Module:
    layers: list[nn.Module] = []
    for cin, cout in ((3, 16), (16, 32), (32, 64)):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 1))


def cross_auc(scores: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``A[i, j]`` = AUC of dataset i's real scores against dataset j's fake scores."""
    names = list(scores)
    a = np.zeros((len(names), len(names)))
    for i, ri in enumerate(names):
        for j, fj in enumerate(names):
            real, fake = scores[ri][0], scores[fj][1]
            y = np.r_[np.zeros(len(real)), np.ones(len(fake))]
            a[i, j] = roc_auc_score(y, np.r_[real, fake])
    return a


def run(demo: Path, epochs: int = 20, seed: int = 0, every: int = 2) -> np.ndarray:
    """Train a small probe on the demo's source dataset and return its AUC on every dataset over the
    epochs."""
    from datamodules.datasets import enumerate_dataset

    torch.manual_seed(seed)
    cfg = yaml.safe_load((demo / "datasets.yaml").read_text())
    recs = {}
    for name, spec in cfg["datasets"].items():
        opts = {k: v for k, v in spec.items() if k not in ("layout", "root")}
        recs[name] = enumerate_dataset(spec["layout"], demo / spec["root"], dataset=name, **opts)
    source = next(iter(recs))
    x, y = _tensors([r for r in recs[source] if r.split == "train"], every)
    net = _net()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    pos_weight = (1 - y.mean()) / y.mean()
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(perm), 32):
            idx = perm[i : i + 32]
            xb = x[idx].flip(3) if torch.rand(1, generator=g) < 0.5 else x[idx]
            loss = nn.functional.binary_cross_entropy_with_logits(
                net(xb).squeeze(1), y[idx], pos_weight=pos_weight
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    scores = {}
    with torch.no_grad():
        for name, rs in recs.items():
            xt, yt = _tensors([r for r in rs if r.split == "test"], every)
            s = net(xt).squeeze(1).numpy()
            scores[name] = (s[yt.numpy() == 0], s[yt.numpy() == 1])
            print(
                f"{name:10s} test frames {len(s):4d}  mean logit real {scores[name][0].mean():+.2f}  "
                f"fake {scores[name][1].mean():+.2f}"
            )
    a = cross_auc(scores)
    names = list(scores)
    print(f"Cross-AUC (real_i vs fake_j), detector trained on {source} train:")
    print(" " * 12 + "".join(f"{'fake ' + n:>16s}" for n in names))
    for i, n in enumerate(names):
        print(f"{'real ' + n:12s}" + "".join(f"{v:16.3f}" for v in a[i]))
    off = a[~np.eye(len(names), dtype=bool)]
    print(f"mean diagonal {a.diagonal().mean():.3f}   mean off-diagonal {off.mean():.3f}")
    return a


def main(argv: list[str] | None = None) -> int:
    """Command line: run the shift probe on a generated demo; returns the exit code."""
    ap = argparse.ArgumentParser(
        prog="python -m datamodules.demo_gen.shift_probe", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--demo", type=Path, default=Path("data/demo"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    run(args.demo, args.epochs, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
