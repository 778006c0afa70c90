"""Lean checkpoints: the frozen backbone stored by reference (source + SHA-256), rebuilt and checked on load.

Expected hashes are computed here from the documented definition (SHA-256 of ``dtype|shape|`` and the
tensor's bytes; one SHA-256 over ``name:digest`` lines in name order) with hashlib and numpy, not with
the module under test.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import pytest
import torch

from detectors import create_detector, get_detector_class, load_detector
from detectors.export import main as export_main
from detectors.frozen_backbone import LEAN_KEY, FrozenBackboneMismatch
from tests.helpers import SyntheticDataModule, make_batch, quiet_trainer

CLIP_DETECTORS = ("sfam", "clip_linear", "forensics_adapter")


def _tiny(name: str, **over):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_detector(name, **{**get_detector_class(name).tiny_config, **over})


def _tower(model) -> torch.nn.Module:
    return model.visual if hasattr(model, "visual") else model.model.visual


def _tower_prefix(model) -> str:
    return "visual." if hasattr(model, "visual") else "model.visual."


def _fit_and_save(model, path: Path, steps: int = 1) -> None:
    dm = SyntheticDataModule(model.data_spec, n=4, batch_size=4)
    trainer = quiet_trainer(max_steps=steps, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(path)


def _load(path: Path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_detector(path, **kw)


def _logits(model, n: int = 4) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(make_batch(model.data_spec, n=n)).logits


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _reference_sha256(named: dict[str, torch.Tensor]) -> str:
    lines = []
    for k in sorted(named):
        t = named[k].detach().contiguous()
        h = hashlib.sha256(f"{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
        lines.append(f"{k}:{h.hexdigest()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


@pytest.mark.parametrize("name", CLIP_DETECTORS)
def test_lean_checkpoint_leaves_out_exactly_the_frozen_tower_and_reloads_bitwise(name, tmp_path):
    model = _tiny(name)
    path = tmp_path / "lean.ckpt"
    _fit_and_save(model, path)
    ckpt = torch.load(path, weights_only=True)
    section = ckpt[LEAN_KEY]
    full = model.state_dict()
    tower = {_tower_prefix(model) + k: v for k, v in _tower(model).state_dict().items()}
    assert sorted(section["keys"]) == sorted(tower)  # the whole frozen tower, nothing else
    assert set(ckpt["state_dict"]) == set(full) - set(tower)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable <= set(ckpt["state_dict"])
    assert section["sha256"] == _reference_sha256(tower)
    (src,) = section["sources"]
    assert src["kind"] == "open_clip" and src["init"] == "random" and src["arch"] == "tiny"
    assert src["module"] == _tower_prefix(model).rstrip(".")
    # size: the saved state is the full state minus the tower's bytes
    assert _nbytes(ckpt["state_dict"].values()) == _nbytes(full.values()) - _nbytes(tower.values())
    again = _load(path, expected=name)
    assert torch.equal(_logits(model), _logits(again))
    for k, v in full.items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_hash_mismatch_is_refused_naming_both_hashes(tmp_path):
    model = _tiny("sfam")
    path = tmp_path / "lean.ckpt"
    _fit_and_save(model, path)
    ckpt = torch.load(path, weights_only=True)
    # The same checkpoint claiming another random state: the tower rebuilt from it is another draw.
    torch.manual_seed(1234)
    ckpt[LEAN_KEY]["init_rng_state"] = torch.random.get_rng_state()
    torch.save(ckpt, tmp_path / "other.ckpt")
    torch.manual_seed(1234)
    other = _tiny("sfam")
    rebuilt = _reference_sha256({"model.visual." + k: v for k, v in other.model.visual.state_dict().items()})
    recorded = ckpt[LEAN_KEY]["sha256"]
    assert rebuilt != recorded
    with pytest.raises(FrozenBackboneMismatch) as err:
        _load(tmp_path / "other.ckpt")
    msg = str(err.value)
    assert recorded in msg and rebuilt in msg
    assert "open_clip tiny (random initialisation)" in msg and "detectors.export --full" in msg
    # a tampered hash is refused too (the check cannot pass vacuously)
    ckpt = torch.load(path, weights_only=True)
    ckpt[LEAN_KEY]["sha256"] = "0" * 64
    torch.save(ckpt, tmp_path / "tampered.ckpt")
    with pytest.raises(FrozenBackboneMismatch, match="0{64}"):
        _load(tmp_path / "tampered.ckpt")


def test_old_full_checkpoint_still_loads(tmp_path):
    """The format every checkpoint had before lean ones: the whole state dict, no frozen_backbone section."""
    model = _tiny("sfam")
    _fit_and_save(model, tmp_path / "lean.ckpt")
    old = {
        "detector_name": "sfam",
        "hyper_parameters": dict(model.hparams),
        "state_dict": model.state_dict(),
        "pretrained_loaded": False,
        "epoch": 0,
        "global_step": 1,
    }
    torch.save(old, tmp_path / "old.ckpt")
    torch.manual_seed(99)  # another random state: the file's tower must win over a fresh draw
    again = _load(tmp_path / "old.ckpt", expected="sfam")
    assert torch.equal(_logits(model), _logits(again))


def test_full_export_travels_alone(tmp_path, capsys):
    model = _tiny("clip_linear")
    _fit_and_save(model, tmp_path / "lean.ckpt")
    assert export_main(["--full", str(tmp_path / "lean.ckpt"), str(tmp_path / "full.ckpt")]) == 0
    assert "full checkpoint" in capsys.readouterr().out
    full = torch.load(tmp_path / "full.ckpt", weights_only=True)
    lean = torch.load(tmp_path / "lean.ckpt", weights_only=True)
    assert LEAN_KEY not in full and set(full["state_dict"]) == set(model.state_dict())
    assert full["exported_from"]["sha256"] == lean[LEAN_KEY]["sha256"]
    # Alone: where the tower is rebuilt differently (another random draw), the file's tensors win.
    torch.manual_seed(4321)
    assert torch.equal(_logits(model), _logits(_load(tmp_path / "full.ckpt")))
    assert export_main([str(tmp_path / "missing.ckpt"), str(tmp_path / "x.ckpt")]) == 2


def test_lean_export_of_a_full_checkpoint_leaves_out_only_a_reproducible_tower(tmp_path):
    model = _tiny("sfam")
    _fit_and_save(model, tmp_path / "lean.ckpt")
    export_main(["--full", str(tmp_path / "lean.ckpt"), str(tmp_path / "full.ckpt")])
    # Loaded under an unrelated random state, the tower's random draws came from the file and nothing
    # reproduces them: they are kept (its constant-initialised LayerNorms are reproducible and go).
    torch.manual_seed(4321)
    assert export_main([str(tmp_path / "full.ckpt"), str(tmp_path / "kept.ckpt")]) == 0
    kept = torch.load(tmp_path / "kept.ckpt", weights_only=True)
    for drawn in ("model.visual.conv1.weight", "model.visual.positional_embedding", "model.visual.proj"):
        assert drawn in kept["state_dict"] and drawn not in kept[LEAN_KEY]["keys"]
    assert {"model.visual.ln_post.weight", "model.visual.ln_post.bias"} <= set(kept[LEAN_KEY]["keys"])
    torch.manual_seed(1)
    assert torch.equal(_logits(model), _logits(_load(tmp_path / "kept.ckpt")))
    # Loaded under the construction's random state (as a pretrained tower would be rebuilt from its
    # weights), the tower is reproducible and the lean export references it again.
    torch.random.set_rng_state(model._init_rng_state)
    assert export_main([str(tmp_path / "full.ckpt"), str(tmp_path / "lean2.ckpt")]) == 0
    a = torch.load(tmp_path / "lean.ckpt", weights_only=True)[LEAN_KEY]
    b = torch.load(tmp_path / "lean2.ckpt", weights_only=True)[LEAN_KEY]
    assert a["sha256"] == b["sha256"] and a["keys"] == b["keys"]
    assert torch.equal(_logits(model), _logits(_load(tmp_path / "lean2.ckpt")))


def test_frozen_modules_that_are_not_a_tagged_backbone_are_saved(tmp_path):
    """Forensics Adapter's fusion projections frozen at their initialisation (the released reference):
    not a backbone built from a source, so every one of their tensors stays in the checkpoint."""
    model = _tiny("forensics_adapter")
    model.freeze_module(model.adapter.fusions)
    path = tmp_path / "fa.ckpt"
    _fit_and_save(model, path)
    ckpt = torch.load(path, weights_only=True)
    fusion_keys = {f"adapter.fusions.{k}" for k in model.adapter.fusions.state_dict()}
    assert fusion_keys and fusion_keys <= set(ckpt["state_dict"])
    assert not fusion_keys & set(ckpt[LEAN_KEY]["keys"])
    again = _load(path)
    again.freeze_module(again.adapter.fusions)
    assert torch.equal(_logits(model), _logits(again))


def test_rebuildable_false_keeps_a_tower_and_changed_frozen_tensors_are_saved(tmp_path):
    model = _tiny("clip_linear")
    model._frozen_rebuildable[0] = False  # as freeze_module(visual, rebuildable=False) records it
    _fit_and_save(model, tmp_path / "kept.ckpt")
    assert LEAN_KEY not in torch.load(tmp_path / "kept.ckpt", weights_only=True)

    model = _tiny("clip_linear")
    with torch.no_grad():
        model.model.visual.ln_post.weight.add_(1.0)  # a frozen tensor the constructor does not reproduce
    _fit_and_save(model, tmp_path / "changed.ckpt")
    ckpt = torch.load(tmp_path / "changed.ckpt", weights_only=True)
    assert "model.visual.ln_post.weight" in ckpt["state_dict"]
    assert "model.visual.ln_post.weight" not in ckpt[LEAN_KEY]["keys"]
    assert "model.visual.ln_post.bias" in ckpt[LEAN_KEY]["keys"]
    assert torch.equal(_logits(model), _logits(_load(tmp_path / "changed.ckpt")))


def test_a_backbone_that_cannot_be_rebuilt_is_saved_in_full(tmp_path):
    """A construction that a rebuild does not reproduce (here: a wrong recorded random state, as a
    constructor drawing from an unrecorded source would behave) is never stored by reference: every
    randomly drawn tensor is saved; only what any construction gives (constant-initialised LayerNorms)
    may be left out."""
    model = _tiny("sfam")
    torch.manual_seed(777)
    model._init_rng_state = torch.random.get_rng_state()
    _fit_and_save(model, tmp_path / "m.ckpt")
    ckpt = torch.load(tmp_path / "m.ckpt", weights_only=True)
    tower = model.model.visual.state_dict()
    drawn = {f"model.visual.{k}" for k, v in tower.items() if v.numel() > 1 and v.unique().numel() > 1}
    assert drawn and drawn <= set(ckpt["state_dict"])
    constant = {f"model.visual.{k}" for k, v in tower.items() if v.unique().numel() == 1}
    assert set(ckpt[LEAN_KEY]["keys"]) <= constant
    assert torch.equal(_logits(model), _logits(_load(tmp_path / "m.ckpt")))


def test_trainer_test_with_a_lean_checkpoint_on_a_model_built_elsewhere(tmp_path):
    """``Trainer.test(model, ckpt_path=lean)`` with a model built under another random state (another
    random tower): the tower is rebuilt as the checkpoint recorded it, the scores are the trained model's."""
    model = _tiny("sfam")
    _fit_and_save(model, tmp_path / "m.ckpt")
    want = _logits(model)
    torch.manual_seed(31337)
    other = _tiny("sfam")
    assert not torch.equal(other.model.visual.conv1.weight, model.model.visual.conv1.weight)
    dm = SyntheticDataModule(model.data_spec, n=4, batch_size=4, test_sets=("a",))
    quiet_trainer().test(other, datamodule=dm, ckpt_path=str(tmp_path / "m.ckpt"), verbose=False)
    assert torch.equal(other.model.visual.conv1.weight, model.model.visual.conv1.weight)
    assert torch.equal(_logits(other), want)


def test_loading_leaves_the_callers_random_state_alone(tmp_path):
    model = _tiny("clip_linear")
    _fit_and_save(model, tmp_path / "m.ckpt")
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    _load(tmp_path / "m.ckpt")
    assert torch.equal(before, torch.random.get_rng_state())


# --------------------------------------------------------------------------- the runner's checkpoints
def _cells(root: Path, detector: str, **detector_over):
    from benchmark.runner.cells import Runtime
    from benchmark.runner.data_config import parse_data_config
    from benchmark.runner.grid import load_grid
    from benchmark.runner.plan import plan_cells
    from tests.runner_fixtures import write_data_config, write_grid

    root.mkdir(parents=True, exist_ok=True)
    write_data_config(root)
    over = {"epochs": 3, "batch_size": 4, "eval_batch_size": 4, **detector_over}
    write_grid(root, detectors=[detector], defaults={"detector": over, "data": {"num_workers": 0}})
    data = parse_data_config(root / "datasets.yaml")
    rt = Runtime(store_root=root / "out/store", work_root=root / "out/cells", progress_bar=False)
    return plan_cells(
        load_grid(root / "tiny.yaml"), data, datamodule="tests.runner_fixtures:synthetic", runtime=rt
    )


def test_cell_resumed_from_a_lean_last_checkpoint_reaches_the_same_scores(tmp_path):
    """A tiny SFAM cell killed at the start of its third epoch resumes from its lean ``last.ckpt`` and
    stores bitwise the scores of an uninterrupted run; its best checkpoint is lean and weights-only."""
    from benchmark.runner.cell import run_cell
    from benchmark.runner.launchers import InlineLauncher
    from benchmark.runner.monitor import FAILED, Job, Monitor
    from benchmark.store import ScoreStore
    from tests.runner_fixtures import RaiseAtEpoch

    scores = {}
    for run in ("uninterrupted", "killed"):
        (cell,) = _cells(tmp_path / run, "sfam", tiny=True)
        if run == "killed":
            jobs = [Job(cell)]
            from rich.console import Console

            InlineLauncher(callbacks=[RaiseAtEpoch(2)]).run(
                jobs, Monitor(jobs, "t", Console(file=None, quiet=True))
            )
            assert jobs[0].status == FAILED
            ckpts = {
                p.name: torch.load(p, weights_only=True)
                for p in (cell.cell_dir / "checkpoints").glob("*.ckpt")
            }
            last = ckpts.pop("last.ckpt")
            assert LEAN_KEY in last and "optimizer_states" in last and "callbacks" in last
            (best,) = ckpts.values()
            assert LEAN_KEY in best and "optimizer_states" not in best and "callbacks" not in best
        rec = run_cell(cell)
        assert rec["resumed"] is (run == "killed")
        best = torch.load(rec["checkpoint"], weights_only=True)
        assert LEAN_KEY in best and "optimizer_states" not in best
        df = ScoreStore(tmp_path / run / "out/store").read_scores()
        scores[run] = df.sort_values(["test_set", "sample_id"]).reset_index(drop=True)
    a, b = scores["uninterrupted"], scores["killed"]
    assert a["sample_id"].tolist() == b["sample_id"].tolist()
    assert (a["score"].to_numpy() == b["score"].to_numpy()).all()  # bitwise


# --------------------------------------------------------------------------- demo-sized configs
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "over", "limit"),
    [
        ("sfam", {}, 0.05),
        ("clip_linear", {}, 0.05),
        ("forensics_adapter", {"clip_model": "ViT-B-16-quickgelu"}, 0.10),
    ],
)
def test_demo_sized_lean_checkpoints_are_a_small_fraction(name, over, limit, tmp_path):
    """ViT-B/16 as in the demo grid (random initialisation offline): the best checkpoint (lean, weights
    only) against what a cell wrote before (every tensor plus Adam's two moments of each trainable one);
    the lean file reloads (tower rebuilt from the recorded random state) to the same outputs."""
    from detectors.export import checkpoint_of

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_detector(name, **over)
    state = model.state_dict()
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = _nbytes(state.values()) + 2 * _nbytes(trainable)
    ckpt = checkpoint_of(model, full=False)
    lean = _nbytes(ckpt["state_dict"].values())
    tower = _tower(model)
    assert lean == _nbytes(state.values()) - _nbytes(tower.state_dict().values())
    print(f"\n{name}: before {before / 1e6:.1f} MB, lean best {lean / 1e6:.2f} MB ({lean / before:.2%})")
    assert lean / before < limit
    assert re.fullmatch(r"[0-9a-f]{64}", ckpt[LEAN_KEY]["sha256"])
    torch.save(ckpt, tmp_path / "lean.ckpt")
    assert torch.equal(_logits(model, n=2), _logits(_load(tmp_path / "lean.ckpt"), n=2))
