"""docs/EXTENDING.md, run as written: its toy detector, toy layout and toy column are the code blocks of that
file (tagged ``title="..."``), read at test time, so the recipes and this test cannot drift.

Each toy is added exactly the way its recipe says and nothing more: the file is written as a real module
of the package the recipe names (a file in a temporary folder appended to that package's search path),
the registry gets the recipe's one ``_MODULES`` line, the column function and declaration are placed in
the namespace of ``benchmark/report/columns.py`` and the reference in ``REFERENCES``. Then each toy goes
through the same contract checks as the suite's own items (``tests/detector_contract.py``,
``tests/layout_contract.py``, the ``REFERENCES`` harness of ``tests/test_leaderboard.py``), plus an end-to-end
run: a grid with the toy detector to its leaderboard page, the toy layout's download preprocessed from real
face videos, the toy column rendered on a detector page. Lastly the entry-point route for a package
installed beside the suite (the recipes' "outside the repository"), in this process and in another one.
"""

from __future__ import annotations
import __future__

import ast
import functools
import importlib
import os
import re
import subprocess
import sys
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch
from rich.console import Console

import datamodules.datasets.base as layouts
import detectors.registry as registry
from benchmark.report import columns
from benchmark.report.columns import Column, Table
from datamodules.datasets import DatasetLayoutError, UnknownLayoutError, enumerate_dataset, list_layouts
from detectors import UnknownDetectorError, create_detector, get_detector_class, list_detectors
from tests import detector_contract, layout_contract
from tests import test_leaderboard as lb
from tests.facevideos import face_video

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "EXTENDING.md"
BLOCK = re.compile(r'^```(\w+) title="([^"]+)"\n(.*?)^```[ \t]*$', re.M | re.S)

DETECTOR_FILE = "detectors/toy_cnn.py"
DETECTOR_LINE = "detectors/registry.py: _MODULES"
LAYOUT_FILE = "datamodules/datasets/toy_faces.py"
LAYOUT_LINE = "datamodules/datasets/base.py: _MODULES"
COLUMN_FUNCTION = "benchmark/report/columns.py: the function"
COLUMN_DECLARATION = "benchmark/report/columns.py: PER_SET"
COLUMN_REFERENCE = "tests/test_leaderboard.py: REFERENCES"
PLUGIN_PYPROJECT = "pyproject.toml of your package"


# --------------------------------------------------------------------------- reading the recipes


@functools.cache
def blocks() -> dict[str, str]:
    """Every titled code block of docs/EXTENDING.md, by title (a title used twice is an error)."""
    out: dict[str, str] = {}
    for _, title, body in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        assert title not in out, f"docs/EXTENDING.md: two code blocks titled {title!r}"
        out[title] = body
    return out


def block(title: str) -> str:
    found = blocks()
    assert title in found, f"docs/EXTENDING.md has no code block titled {title!r}; it has {sorted(found)}"
    return found[title]


def registry_line(title: str) -> tuple[str, str]:
    """The one ``_MODULES`` line a recipe adds, as ``(name, module)``."""
    entry = ast.literal_eval("{" + block(title) + "}")
    assert len(entry) == 1, f"{title}: the recipe adds exactly one line, got {entry}"
    ((name, module),) = entry.items()
    return name, module


def install_in_tree(title: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Write the block titled ``<package path>/<file>.py`` as that module of that package: the file lives in
    ``folder``, which is appended to the package's search path. Returns the module's name."""
    package, _, filename = title.rpartition("/")
    pkg = importlib.import_module(package.replace("/", "."))
    (folder / filename).write_text(block(title), encoding="utf-8")
    monkeypatch.setattr(pkg, "__path__", [*pkg.__path__, str(folder)])
    importlib.invalidate_caches()
    return f"{pkg.__name__}.{filename.removesuffix('.py')}"


def forget(*modules: str) -> None:
    """Unload ``modules`` (and their attributes on the parent packages) so no other test sees them."""
    for m in modules:
        sys.modules.pop(m, None)
        parent, _, child = m.rpartition(".")
        if parent in sys.modules and hasattr(sys.modules[parent], child):
            delattr(sys.modules[parent], child)


def in_columns_py(source: str, namespace: dict) -> None:
    """Run ``source`` as code of ``benchmark/report/columns.py`` (whose annotations are postponed)."""
    flags = __future__.annotations.compiler_flag
    exec(compile(source, columns.__file__, "exec", flags=flags, dont_inherit=True), namespace)


def test_the_recipes_code_is_lint_clean(tmp_path: Path) -> None:
    """The worked examples follow the project's style (ruff with the repository's settings)."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.is_file():
        pytest.skip("ruff is not installed beside this Python (the dev extra)")
    files = []
    for title in (DETECTOR_FILE, LAYOUT_FILE):
        files.append(tmp_path / title.replace("/", "__"))
        files[-1].write_text(block(title), encoding="utf-8")
    config = ["--config", str(ROOT / "pyproject.toml")]
    for cmd in (["check", *config], ["format", "--check", "--diff", *config]):
        out = subprocess.run([str(ruff), *cmd, *map(str, files)], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


# --------------------------------------------------------------------------- 1. a detector


@pytest.fixture
def toy_detector(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The recipe: the file, then the one registry line; returns the detector's name."""
    module = install_in_tree(DETECTOR_FILE, tmp_path_factory.mktemp("toy_detector"), monkeypatch)
    name, listed = registry_line(DETECTOR_LINE)
    assert listed == module, f"the registry line names {listed!r}, the recipe's file is {module!r}"
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setitem(registry._MODULES, name, listed)
    yield name
    forget(module)


def test_the_file_alone_is_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = install_in_tree(DETECTOR_FILE, tmp_path, monkeypatch)
    name, _ = registry_line(DETECTOR_LINE)
    assert name not in list_detectors()
    with pytest.raises(UnknownDetectorError, match=name):
        create_detector(name)
    assert module not in sys.modules


@pytest.mark.parametrize("check", detector_contract.CHECKS, ids=detector_contract.check_id)
def test_toy_detector_passes_the_detector_contract(toy_detector: str, check, tmp_path: Path) -> None:
    assert toy_detector in list_detectors()
    check(toy_detector, tmp_path)


def test_toy_detector_released_reference_and_converter(toy_detector: str) -> None:
    from detectors.convert import ConversionError, load_converted

    cls = get_detector_class(toy_detector)
    released = cls.resolve_settings(reference="released")
    assert released.recipe == cls.released_recipe and released.recipe.epochs == cls.default_recipe.epochs + 1
    assert released.recipe.augmentation.semantics == "albumentations-1.1.0"
    assert released.arch["width"] == 16 and cls.resolve_settings().arch["width"] == 32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_detector(toy_detector, reference="released", input_size=32)
    assert model.recipe == cls.released_recipe and model.head.in_features == 16
    # a checkpoint as the (pretend) released code saves it: its docstring's key names, a two-way head, DDP
    w = 16
    state = {
        "module.features.0.weight": torch.randn(w, 3, 3, 3),
        "module.features.0.bias": torch.randn(w),
        "module.features.1.weight": torch.rand(w),
        "module.features.1.bias": torch.randn(w),
        "module.features.1.running_mean": torch.randn(w),
        "module.features.1.running_var": torch.rand(w) + 0.5,
        "module.features.1.num_batches_tracked": torch.tensor(7),
        "module.classifier.weight": torch.randn(2, w),
        "module.classifier.bias": torch.randn(2),
    }
    ours = load_converted("toy_release", toy_detector, state)
    head_w, head_b = state["module.classifier.weight"], state["module.classifier.bias"]
    assert torch.equal(ours.head.weight[0], head_w[1] - head_w[0]) and torch.equal(
        ours.head.bias[0], head_b[1] - head_b[0]
    )
    assert torch.equal(ours.features[1].running_var, state["module.features.1.running_var"])
    assert ours.pretrained_loaded
    with pytest.raises(ConversionError, match=r"toy release: 1 keys of unknown layout.*'extra\.weight'"):
        load_converted("toy_release", toy_detector, {**state, "extra.weight": torch.zeros(1)})


def test_toy_detector_runs_a_grid_to_its_leaderboard_page(toy_detector: str, tmp_path: Path) -> None:
    from benchmark.run import main
    from benchmark.store import ScoreStore
    from tests.runner_fixtures import write_data_config, write_grid

    cls = get_detector_class(toy_detector)
    write_data_config(tmp_path)
    over = {**cls.tiny_config, "epochs": 1, "batch_size": 4, "eval_batch_size": 4}
    grid = write_grid(tmp_path, "toy", detectors=[toy_detector], defaults={"detector": over})
    args = ["--grid", str(grid), "--data", str(tmp_path / "datasets.yaml"), "--out", str(tmp_path / "out")]
    args += ["--datamodule", "tests.runner_fixtures:synthetic", "--launcher", "inline"]
    args += ["--leaderboards", str(tmp_path / "lb")]
    assert main(args, console=Console(record=True, width=200)) == 0
    records = ScoreStore(tmp_path / "out" / "store").read_records()
    assert list(records["detector"]) == [toy_detector] and list(records["status"]) == ["done"]
    page = (tmp_path / "lb" / "toy" / f"{toy_detector}.md").read_text()
    assert f"Recipe: {cls.default_recipe.source}." in page
    assert f"[{toy_detector}](toy/{toy_detector}.md)" in (tmp_path / "lb" / "README.md").read_text()


# --------------------------------------------------------------------------- 2. a dataset layout


@pytest.fixture
def toy_layout(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The recipe: the file, then the one ``_MODULES`` line; returns the layout's name."""
    module = install_in_tree(LAYOUT_FILE, tmp_path_factory.mktemp("toy_layout"), monkeypatch)
    name, listed = registry_line(LAYOUT_LINE)
    assert listed == module, f"the registry line names {listed!r}, the recipe's file is {module!r}"
    monkeypatch.setattr(layouts, "_ADAPTERS", dict(layouts._ADAPTERS))
    monkeypatch.setitem(layouts._MODULES, name, listed)
    yield name
    forget(module)


HEADER = "file,label,split\n"


def toy_download(root: Path, metadata: str, videos: tuple[str, ...] = (), faces: bool = False) -> Path:
    """A ToyFaces download as its ``Expected layout`` says: ``metadata.csv`` (the text ``metadata``) and
    ``videos/`` (real face videos with ``faces``, else empty files: listing needs no content)."""
    (root / "videos").mkdir(parents=True)
    (root / "metadata.csv").write_text(metadata)
    for i, v in enumerate(videos):
        if faces:
            face_video(root / "videos" / v, ("astronaut", "grace_hopper")[i % 2], n=2, width=128)
        else:
            (root / "videos" / v).write_bytes(b"")
    return root


def test_the_layout_file_alone_is_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_in_tree(LAYOUT_FILE, tmp_path, monkeypatch)
    name, _ = registry_line(LAYOUT_LINE)
    with pytest.raises(UnknownLayoutError, match=name):
        enumerate_dataset(name, tmp_path)


@pytest.mark.parametrize("check", layout_contract.CHECKS, ids=layout_contract.check_id)
def test_toy_layout_passes_the_layout_contract(toy_layout: str, check, tmp_path: Path) -> None:
    assert toy_layout in list_layouts()
    check(toy_layout, tmp_path)


def test_toy_layout_reads_the_owners_splits_and_preprocesses_end_to_end(
    toy_layout: str, tmp_path: Path
) -> None:
    from datamodules.preprocess import preprocess_dataset
    from tests.test_preprocess import check_ok_rows

    rows = "r0.mp4,real,train\nf0.avi,fake,train\nr1.mp4,0,test\nf1.mp4,1,test\n"
    root = toy_download(tmp_path / "Toy", HEADER + rows, ("r0.mp4", "f0.avi", "r1.mp4", "f1.mp4"), faces=True)
    records = {r.video_id: r for r in enumerate_dataset(toy_layout, root, dataset="Toy")}
    expected = {
        "Toy/real/r0": ("train", 0, "real", "real"),
        "Toy/fake/f0": ("train", 1, "fake", "fake"),
        "Toy/real/r1": ("test", 0, "real", "0"),
        "Toy/fake/f1": ("test", 1, "fake", "1"),
    }
    assert {k: (r.split, r.label, r.method, r.source_label) for k, r in records.items()} == expected
    assert all(r.kind == "video" and r.compression == "" and r.path.is_file() for r in records.values())
    assert enumerate_dataset(toy_layout, root)[0].dataset == "ToyFaces"  # default_name

    manifest = preprocess_dataset("Toy", toy_layout, root, tmp_path / "out", frames=2, progress=False)
    df = pd.read_parquet(manifest)
    assert (df.status == "ok").all() and set(df.video_id) == set(expected)
    per_video = df.groupby("video_id")[["split", "label", "method", "source_label"]].first()
    assert {v: tuple(r) for v, r in per_video.iterrows()} == expected
    check_ok_rows(df, tmp_path / "out" / "Toy", size=256)


@pytest.mark.parametrize(
    ("metadata", "videos", "exc", "match"),
    [
        ("file,label\nr0.mp4,real\n", (), DatasetLayoutError, r"metadata\.csv lacks column\(s\) \['split'\]"),
        (HEADER + "r0.mp4,maybe,test\n", ("r0.mp4",), ValueError, r"metadata\.csv line 2: label 'maybe'"),
        (
            HEADER + "r0.mp4,real,training\n",
            ("r0.mp4",),
            DatasetLayoutError,
            r"metadata\.csv line 2: split 'training'",
        ),
        (
            HEADER + "r0.mp4,real,test\nzz.mp4,fake,test\n",
            ("r0.mp4",),
            DatasetLayoutError,
            r"(?s)1 videos listed in metadata\.csv do not exist.*zz\.mp4",
        ),
        (
            HEADER + "r0.mp4,real,test\nr0.mp4,real,test\n",
            ("r0.mp4",),
            ValueError,
            r"duplicate video_id.*Toy/real/r0",
        ),
    ],
    ids=["column_missing", "bad_label", "bad_split", "listed_video_missing", "listed_twice"],
)
def test_toy_layout_bad_inputs_name_the_culprit(
    toy_layout: str, tmp_path: Path, metadata, videos, exc, match
) -> None:
    root = toy_download(tmp_path / "Toy", metadata, videos)
    with pytest.raises(exc, match=match):
        enumerate_dataset(toy_layout, root, dataset="Toy")


def test_toy_layout_without_its_videos_folder(toy_layout: str, tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text("file,label,split\n")
    with pytest.raises(
        DatasetLayoutError, match=rf"layout 'toy_faces': missing folder {re.escape(str(tmp_path))}/videos"
    ):
        enumerate_dataset(toy_layout, tmp_path)


# --------------------------------------------------------------------------- 3. a leaderboard column


@pytest.fixture
def toy_column(monkeypatch: pytest.MonkeyPatch) -> Column:
    """The recipe: the function and the declaration in ``columns.py`` (a copy of its namespace), the
    declaration appended to ``PER_SET``'s columns."""
    namespace = dict(vars(columns))
    in_columns_py(block(COLUMN_FUNCTION), namespace)
    column = eval(block(COLUMN_DECLARATION), namespace)
    assert isinstance(column, Column)
    monkeypatch.setattr(columns, "PER_SET", Table(columns.PER_SET.labels, (*columns.PER_SET.columns, column)))
    return column


def test_a_column_without_its_reference_fails_the_harness(toy_column: Column) -> None:
    assert lb.missing_references() == [("per_set", toy_column.key)]


def test_toy_column_matches_its_reference_and_is_printed(
    toy_column: Column, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from benchmark.report.leaderboard import md_table, render

    entry = eval("{" + block(COLUMN_REFERENCE) + "}", vars(lb))
    assert list(entry) == [("per_set", toy_column.key)], entry
    for key, reference in entry.items():
        monkeypatch.setitem(lb.REFERENCES, key, reference)
    assert lb.missing_references() == []
    lb.check_analysis_against_references(tmp_path / "harness", seeds=(0,), decimals=1)  # with ties

    lb.fill_store(tmp_path / "store", seeds=(0, 1))
    render(tmp_path / "store", tmp_path / "lb", n_boot=60)
    group, a = lb._analysed(tmp_path / "store", 60)
    values = [a.per_set[d][toy_column.key] for d in lb.SETS]
    assert all(v.lo <= v.value <= v.hi for v in values)  # an estimate inside its interval
    page = (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    rows = [columns.PER_SET.row(d, a.per_set[d], a) for d in lb.SETS]
    assert md_table(columns.PER_SET.headers, rows) in page and toy_column.explanation in page
    assert [r[-1] for r in rows] == [toy_column.fmt(v, a) for v in values]


# --------------------------------------------------------------------------- outside the repository


@pytest.fixture
def fresh_entry_points() -> Iterator[None]:
    registry.installed_detectors.cache_clear()
    layouts.installed_layouts.cache_clear()
    yield
    registry.installed_detectors.cache_clear()
    layouts.installed_layouts.cache_clear()


def install_distribution(site: Path, groups: dict[str, dict[str, str]], name: str = "toy-plugin") -> None:
    """An installed distribution's metadata as pip writes it: ``<name>.dist-info/{METADATA,entry_points.txt}``."""
    dist = site / f"{name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = [
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
        for group, entries in groups.items()
    ]
    (dist / "entry_points.txt").write_text("\n".join(lines))


def test_an_installed_package_adds_the_toys_without_editing_the_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_entry_points: None
) -> None:
    groups = tomllib.loads(block(PLUGIN_PYPROJECT))["project"]["entry-points"]
    assert set(groups) == {registry.ENTRY_POINT_GROUP, layouts.ENTRY_POINT_GROUP}
    files = {registry.ENTRY_POINT_GROUP: DETECTOR_FILE, layouts.ENTRY_POINT_GROUP: LAYOUT_FILE}
    site = tmp_path / "site"
    install_distribution(site, groups)
    modules = []
    for group, entries in groups.items():
        for module in entries.values():
            path = site / (module.replace(".", "/") + ".py")
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / "__init__.py").touch()
            path.write_text(block(files[group]), encoding="utf-8")
            modules += [module, module.rpartition(".")[0]]
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(layouts, "_ADAPTERS", dict(layouts._ADAPTERS))
    (det,) = groups[registry.ENTRY_POINT_GROUP]
    (lay,) = groups[layouts.ENTRY_POINT_GROUP]
    try:
        assert det in list_detectors() and lay in list_layouts()
        tiny = detector_contract.tiny(det)
        assert type(tiny).__module__ == groups[registry.ENTRY_POINT_GROUP][det]
        root = toy_download(tmp_path / "Toy", HEADER + "r0.mp4,real,test\n", ("r0.mp4",))
        assert [r.video_id for r in enumerate_dataset(lay, root, dataset="Toy")] == ["Toy/real/r0"]
    finally:
        forget(*modules)
    # another process (a cell the local or SLURM launcher starts) finds them from the metadata alone
    code = (
        "from detectors.registry import get_detector_class; from datamodules.datasets import get_adapter; "
        f"print(get_detector_class({det!r}).__module__, type(get_adapter({lay!r})).__module__)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        groups[registry.ENTRY_POINT_GROUP][det],
        groups[layouts.ENTRY_POINT_GROUP][lay],
    ]


def test_an_installed_name_the_suite_has_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_entry_points: None
) -> None:
    install_distribution(
        tmp_path,
        {
            registry.ENTRY_POINT_GROUP: {"xception": "my_detectors.x"},
            layouts.ENTRY_POINT_GROUP: {"ffpp": "my_datasets.x"},
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ValueError,
        match=r"entry point xception = 'my_detectors\.x' of toy-plugin .*already has a detector 'xception'",
    ):
        list_detectors()
    with pytest.raises(
        ValueError, match=r"entry point ffpp = 'my_datasets\.x' of toy-plugin .*already has a layout 'ffpp'"
    ):
        list_layouts()
