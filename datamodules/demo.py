"""The embedded demo benchmark: three small face-forgery domains generated offline from real faces.

``python -m datamodules.demo [--out data/demo] [--seed 0] [--overwrite]`` writes, from the ten real
faces that ship inside installed packages (``demo_gen.sources``), short videos with head motion,
lighting drift and camera noise, real manipulations with exact masks (``demo_gen.manipulations``), three
capture domains (``demo_gen.domains``) in the official layouts of FaceForensics++, Celeb-DF v2 and DFDC
(``demo_gen.plan``), and ``<out>/datasets.yaml`` naming them ``demo-FF``, ``demo-CDF``, ``demo-DFDC``.
It is a synthetic smoke benchmark for learning and testing the suite, not a ranking of detectors.

Guarantees:

* Deterministic: the seed fixes every byte. Every random draw comes from a numpy Generator seeded by
  ``(seed, domain, video)``; OpenCV runs single-threaded. The mp4v encoder is byte-deterministic for a
  given OpenCV/FFmpeg build (its version strings are inside the files), so ``MANIFEST.sha256`` holds
  sha256 of the file bytes (``sha256sum -c`` format); ``DEMO.json`` records the OpenCV version.
* Idempotent: with a ``COMPLETE`` marker present, a second run with the same seed and config verifies
  every checksum and does nothing. A file that fails verification is regenerated, and the result must
  match the recorded checksum.
* Resumable: videos are written under ``<out>/.staging`` and renamed into place only after every frame
  decodes back, so a file at a final path is complete; an interrupted run resumes where it stopped. The
  manifest and then the ``COMPLETE`` marker are written last.
* Safe: an output directory holding anything else, or a demo of another seed or config, is refused
  unless ``--overwrite``; a missing photo package is named with the pip command that installs it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from datamodules.demo_gen import plan as P
from datamodules.demo_gen.domains import DOMAINS, FF_METHODS
from datamodules.demo_gen.manipulations import StaticFake
from datamodules.demo_gen.sources import (
    SPLIT_OF,
    DemoSourceError,
    Identity,
    identities_fingerprint,
    load_identities,
)
from datamodules.demo_gen.video import random_clip, render_frames, write_text_atomic, write_video_atomic

FORMAT = "forgery-bench-demo/1"
DEFAULT_OUT = Path("data/demo")
STATE, MANIFEST, INFO, COMPLETE, STAGING = (
    ".demo-state.json",
    "MANIFEST.sha256",
    "DEMO.json",
    "COMPLETE",
    ".staging",
)
NOTE = "A synthetic smoke benchmark for learning and testing the suite, NOT a ranking of detectors."


class DemoError(RuntimeError):
    """Base class of the demo generator's errors."""


class ForeignOutputError(DemoError):
    """The output directory holds something that is not this demo."""


class DemoMismatchError(DemoError):
    """The output directory holds a demo of another seed, config or source photos."""


class DemoIntegrityError(DemoError):
    """Regenerated files do not match the recorded checksums."""


@dataclass
class DemoResult:
    """``status``: generated | resumed | verified | repaired."""

    out: Path
    status: str
    written: int
    skipped: int
    seconds: float

    @property
    def datasets_yaml(self) -> Path:
        """The ``datasets.yaml`` that points ``benchmark.run`` at the demo datasets."""
        return self.out / "datasets.yaml"


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_manifest(out: Path) -> dict[str, str]:
    """``relative path -> sha256`` from ``<out>/MANIFEST.sha256``."""
    rows = {}
    for line in (out / MANIFEST).read_text(encoding="utf-8").splitlines():
        digest, rel = line.split("  ", 1)
        rows[rel] = digest
    return rows


def verify(out: Path | str) -> list[str]:
    """Relative paths that are missing or differ from the manifest (empty: the demo is intact)."""
    out = Path(out)
    if not (out / MANIFEST).is_file() or not (out / COMPLETE).is_file():
        return [MANIFEST]
    marker = json.loads((out / COMPLETE).read_text(encoding="utf-8"))
    if marker.get("manifest_sha256") != _sha256(out / MANIFEST):
        return [MANIFEST]
    return [
        rel for rel, d in read_manifest(out).items() if not (out / rel).is_file() or _sha256(out / rel) != d
    ]


def _refuse_dangerous(out: Path) -> None:
    r = out.resolve()
    if (
        r == Path(r.anchor)
        or r == Path.home().resolve()
        or r == Path.cwd().resolve()
        or (r / ".git").exists()
    ):
        raise ForeignOutputError(
            f"refusing to overwrite {out}: it is a filesystem root, home, the working directory or a git repository"
        )


def _prepare(out: Path, seed: int, cfg: P.DemoConfig, overwrite: bool) -> dict | None:
    """Check the output directory; return the state of an earlier run of the same demo (or None)."""
    if out.exists() and not out.is_dir():
        raise ForeignOutputError(f"--out {out} is a file, not a directory")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if entries and overwrite:
        _refuse_dangerous(out)
        shutil.rmtree(out)
        return None
    if not entries:
        return None
    if not (out / STATE).is_file():
        shown = ", ".join(entries[:8]) + (", ..." if len(entries) > 8 else "")
        raise ForeignOutputError(
            f"{out} is not empty and holds no demo generated by this tool (found: {shown}); "
            "choose another --out or pass --overwrite to replace its contents"
        )
    state = json.loads((out / STATE).read_text(encoding="utf-8"))
    mine = {"format": FORMAT, "seed": seed, "config": cfg.name}
    theirs = {k: state.get(k) for k in mine}
    if theirs != mine:
        raise DemoMismatchError(
            f"{out} holds the demo {theirs}, not {mine}; pass --seed {theirs['seed']} "
            f"--config {theirs['config']} to reuse it, or --overwrite to regenerate it"
        )
    return state


def _render(job: P.Job, seed: int, cfg: P.DemoConfig, ids: dict[str, Identity]) -> tuple[list, list]:
    domain = DOMAINS[job.domain]
    target = ids[job.target]
    clip = random_clip(
        P.rng_for(seed, job.domain, "clip", job.clip_key), cfg.frames, domain.size, domain.light
    )
    noise = P.rng_for(seed, job.domain, "noise", job.clip_key)
    fake = None
    if job.label:
        spec = domain.fake_spec(job.method, P.rng_for(seed, job.domain, "fake", job.relpath))
        src = ids[job.source] if job.source else None
        fake = StaticFake(
            spec,
            target.portrait,
            target.landmarks,
            None if src is None else src.portrait,
            None if src is None else src.landmarks,
            domain.size,
        )
    return render_frames(target.portrait, clip, domain, noise, fake)


def _datasets_yaml(seed: int, cfg: P.DemoConfig) -> str:
    lines = [
        f"# The embedded demo benchmark (python -m datamodules.demo --seed {seed} --config {cfg.name}).",
        f"# {NOTE}",
        "processed_root: processed",
        "datasets:",
    ]
    for name, d in DOMAINS.items():
        extra = ", compression: c23" if d.layout == "ffpp" else ""
        lines.append(f"  {name}: {{layout: {d.layout}, root: {name}{extra}}}")
    return "\n".join(lines) + "\n"


def _info(seed: int, cfg: P.DemoConfig, fingerprint: str, jobs: list[P.Job]) -> str:
    counts: dict[str, dict[str, int]] = {}
    for j in jobs:
        c = counts.setdefault(j.domain, {})
        key = f"{j.split}/{'fake' if j.label else 'real'}"
        c[key] = c.get(key, 0) + 1
    info = {
        "format": FORMAT,
        "note": NOTE,
        "seed": seed,
        "config": asdict(cfg),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "sources_sha256": fingerprint,
        "identity_splits": SPLIT_OF,
        "ff_methods": list(FF_METHODS),
        "domains": {k: asdict(v) for k, v in DOMAINS.items()},
        "videos": counts,
    }
    return json.dumps(info, indent=1, sort_keys=True) + "\n"


def plan_all(seed: int, cfg: P.DemoConfig) -> tuple[list[P.Job], dict[str, str]]:
    """Every video job and every small text file (relative path -> content) of the demo."""
    ff, ff_splits = P.plan_ffpp(cfg)
    cdf = P.plan_celebdf(cfg)
    dfdc = P.plan_dfdc(cfg, seed)
    texts = {f"demo-FF/splits/{s}.json": json.dumps(ff_splits[s]) + "\n" for s in P.SPLITS}
    texts["demo-CDF/List_of_testing_videos.txt"] = P.celebdf_test_list(cdf)
    texts["demo-DFDC/dfdc_train_part_0/metadata.json"] = P.dfdc_metadata(dfdc)
    texts["demo-DFDC/test/labels.csv"] = P.dfdc_labels(dfdc)
    texts["datasets.yaml"] = _datasets_yaml(seed, cfg)
    return ff + cdf + dfdc, texts


def generate(
    out: Path | str = DEFAULT_OUT,
    seed: int = 0,
    config: str = "full",
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Generate (or verify, or resume) the demo in ``out``; see the module docstring."""
    t0 = time.perf_counter()
    out = Path(out)
    if config not in P.CONFIGS:
        raise ValueError(f"unknown demo config {config!r}; known: {', '.join(P.CONFIGS)}")
    cfg = P.CONFIGS[config]
    state = _prepare(out, seed, cfg, overwrite)
    old_manifest: dict[str, str] | None = None
    if state is not None and (out / COMPLETE).is_file():
        bad = verify(out)
        if not bad:
            log(f"demo in {out} is complete and verified (seed {seed}, config {cfg.name}); nothing to do")
            return DemoResult(out, "verified", 0, 0, time.perf_counter() - t0)
        log(f"{len(bad)} file(s) of {out} fail verification, regenerating: {', '.join(bad[:5])}")
        old_manifest = read_manifest(out) if bad != [MANIFEST] else None
        (out / COMPLETE).unlink()
        for rel in bad:
            (out / rel).unlink(missing_ok=True)

    ids_list = load_identities()
    fingerprint = identities_fingerprint(ids_list)
    if state is not None and state.get("sources_sha256") != fingerprint:
        raise DemoMismatchError(
            f"the source photos or face detectors changed since {out} was started "
            f"({state.get('sources_sha256', '?')[:12]} -> {fingerprint[:12]}); pass --overwrite to regenerate"
        )
    out.mkdir(parents=True, exist_ok=True)
    staging = out / STAGING
    shutil.rmtree(staging, ignore_errors=True)  # half-written files of an interrupted run
    if state is None:
        state = {"format": FORMAT, "seed": seed, "config": cfg.name, "sources_sha256": fingerprint}
        write_text_atomic(json.dumps(state, indent=1, sort_keys=True) + "\n", out / STATE, staging)

    ids = {i.name: i for i in ids_list}
    jobs, texts = plan_all(seed, cfg)
    written = skipped = 0
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for n, job in enumerate(jobs, 1):
            final = out / job.relpath
            mask = out / job.mask_relpath if job.mask_relpath else None
            if final.is_file() and (mask is None or mask.is_file()):
                skipped += 1
                continue
            frames, masks = _render(job, seed, cfg, ids)
            if mask is not None:
                write_video_atomic(masks, mask, staging)
            write_video_atomic(frames, final, staging)
            written += 1
            if n % 25 == 0 or n == len(jobs):
                log(f"  {n}/{len(jobs)} videos ({job.domain})")
    finally:
        cv2.setNumThreads(threads)

    texts[INFO] = _info(seed, cfg, fingerprint, jobs)
    for rel, text in texts.items():
        write_text_atomic(text, out / rel, staging)
    files = sorted({j.relpath for j in jobs} | {j.mask_relpath for j in jobs if j.mask_relpath} | set(texts))
    manifest = {rel: _sha256(out / rel) for rel in files}
    if old_manifest is not None and manifest != old_manifest:
        changed = sorted(r for r in manifest if manifest[r] != old_manifest.get(r))
        raise DemoIntegrityError(
            f"regenerated files differ from the recorded manifest of {out}: {', '.join(changed[:5])} "
            f"(another OpenCV build than {json.loads(texts[INFO])['opencv']}?); pass --overwrite to regenerate all"
        )
    write_text_atomic("".join(f"{d}  {rel}\n" for rel, d in manifest.items()), out / MANIFEST, staging)
    marker = {"format": FORMAT, "seed": seed, "config": cfg.name, "manifest_sha256": _sha256(out / MANIFEST)}
    write_text_atomic(json.dumps(marker, indent=1, sort_keys=True) + "\n", out / COMPLETE, staging)
    shutil.rmtree(staging, ignore_errors=True)
    status = "repaired" if old_manifest is not None else ("resumed" if skipped else "generated")
    secs = time.perf_counter() - t0
    log(f"demo {status} in {out}: {written} videos written, {skipped} already present, {secs:.1f} s")
    return DemoResult(out, status, written, skipped, secs)


def ensure_demo(out: Path | str = DEFAULT_OUT, seed: int = 0, config: str = "full") -> Path:
    """Generate the demo once, verify it afterwards; return its ``datasets.yaml`` (for the runner)."""
    return generate(out, seed=seed, config=config).datasets_yaml


def main(argv: list[str] | None = None) -> int:
    """Command line: generate the embedded demo benchmark; returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m datamodules.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: data/demo)")
    ap.add_argument("--seed", type=int, default=0, help="the seed that fixes every byte (default: 0)")
    ap.add_argument("--overwrite", action="store_true", help="replace whatever the output folder holds")
    ap.add_argument(
        "--config",
        choices=sorted(P.CONFIGS),
        default="full",
        help="'quick' is a smaller config for the test suite only",
    )
    args = ap.parse_args(argv)
    try:
        generate(args.out, seed=args.seed, config=args.config, overwrite=args.overwrite)
    except (DemoError, DemoSourceError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
