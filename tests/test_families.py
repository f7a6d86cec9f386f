"""The model-family registry (:mod:`neurocwm.families`) and the trainer's interface (:mod:`neurocwm.train.task`)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import optcwm_options, train_smoke_cwm
from safetensors.torch import load_file
from torch import nn

import neurocwm
from neurocwm.families import (
    CWMModelConfig,
    OptCWMModelConfig,
    TDANNModelConfig,
    family_name,
    family_names,
    family_of,
    fit_models,
    get_family,
)
from neurocwm.train import cosine_lr, fit
from neurocwm.train.task import Task

PACKAGE = Path(neurocwm.__file__).parent


# ------------------------------------------------------------------------------------------------ the registry
def test_lookup_and_unknown_family_names_the_known_ones():
    assert family_names() == ["cwm", "optcwm", "tdann"]
    assert fit_models() == ("tdann", "cwm")
    assert [get_family(n).name for n in family_names()] == family_names()
    assert family_of({}).name == "tdann" and family_of(None).name == "tdann"  # runs from before the key
    assert family_name({"model_family": "optcwm"}) == "optcwm"
    for bad in ("resnet", "", None, 3):
        with pytest.raises(ValueError) as exc:
            get_family(bad)
        msg = str(exc.value)
        assert "\n" not in msg and repr(bad) in msg and "cwm, optcwm, tdann" in msg


def test_each_family_declares_its_task_model_and_readouts():
    from neurocwm.cwm.task import CWMTask, OptCWMTask
    from neurocwm.tdann import TDANNTask

    tasks = {"tdann": TDANNTask, "cwm": CWMTask, "optcwm": OptCWMTask}
    for name, cls in tasks.items():
        fam = get_family(name)
        assert type(fam.task()) is cls and isinstance(fam.task(), Task)
        assert fam.fit_model in fit_models() and fam.data and fam.feature_input
    assert get_family("tdann").brainscore_export and not get_family("cwm").brainscore_export
    assert not get_family("tdann").readouts and "flow" in get_family("optcwm").readouts
    assert get_family("optcwm").accepts_base({"model_family": "cwm"})
    opt = get_family("optcwm")
    assert not opt.accepts_base({"model_family": "optcwm"}) and not opt.accepts_base({})


def test_typed_model_configs_read_exactly_the_model_keys():
    cfg = {"arch": "resnet18_w16", "objective": "supervised", "num_classes": 7, "lr": 0.1, "alpha": 0.5}
    assert TDANNModelConfig.from_config(cfg) == TDANNModelConfig("resnet18_w16", "supervised", 7)
    with pytest.raises(KeyError, match="arch"):
        TDANNModelConfig.from_config({"objective": "simclr"})
    assert CWMModelConfig.from_config({"arch": "smoke", "image_size": "32", "pos_embed": None}) == CWMModelConfig(
        "smoke", 32, None, None
    )
    imported = CWMModelConfig.from_config({"cwm_config": {"image_size": 32}, "image_size": 64})
    assert imported.cwm_config == {"image_size": 32} and imported.image_size is None  # the recorded shape wins
    opt = OptCWMModelConfig.from_config(
        {
            "arch": "smoke",
            "image_size": 32,
            "pos_embed": "rope",
            "n_flow_pts": 8,
            "probe_visible": 0.1,
            "inv_temp": 20,
            "readout_radius": None,
            "tracer_hidden": 16,
            "flow_dim": 16,
            "flow_depth": 1,
            "flow_heads": 2,
        }
    )
    assert opt.inv_temp == 20.0 and isinstance(opt.inv_temp, float) and opt.readout_radius is None


def _small_optcwm_config() -> dict:
    """A full Opt-CWM config (task defaults) on the smoke CWM at 32 px with small flow and tracer heads."""
    from neurocwm.cwm.task import DEFAULTS, OPT_DEFAULTS

    small = {"tracer_hidden": 16, "flow_dim": 16, "flow_depth": 1, "flow_heads": 2}
    return {**DEFAULTS, **OPT_DEFAULTS, "arch": "smoke", "image_size": 32, **small}


def test_build_model_through_the_registry_equals_the_direct_construction():
    """Seeded builds from the registry are the same models (same parameters) as built by hand."""
    from neurocwm.cwm.model import build_cwm
    from neurocwm.cwm.optcwm import OptCWM
    from neurocwm.tdann import TDANNNet

    def same(a: nn.Module, b: nn.Module) -> None:
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)

    torch.manual_seed(3)
    got = get_family("tdann").build_model({"arch": "resnet18_w16", "objective": "simclr"})
    torch.manual_seed(3)
    same(got, TDANNNet("resnet18_w16", "simclr", None))
    torch.manual_seed(3)
    got = get_family("cwm").build_model({"arch": "smoke", "image_size": 32, "pos_embed": "rope"})
    torch.manual_seed(3)
    same(got, build_cwm("smoke", image_size=32, pos_embed="rope"))
    cfg = _small_optcwm_config()
    torch.manual_seed(3)
    got = get_family("optcwm").build_model(cfg)
    torch.manual_seed(3)
    want = OptCWM(
        build_cwm("smoke", image_size=32),
        n_flow_pts=8,
        visible_fraction=0.1,
        inv_temp=20.0,
        search_radius=14.0,
        tracer_hidden=16,
        flow_dim=16,
        flow_depth=1,
        flow_heads=2,
    )
    assert isinstance(got, OptCWM)
    same(got, want)


def test_optcwm_features_are_those_of_its_frozen_base_cwm():
    """The mapped layers of an Opt-CWM run are its base CWM's: same sizes, areas and responses."""
    from neurocwm.features import input_size, layer_areas, layer_dims, layer_responses
    from neurocwm.runs import Run

    cfg = _small_optcwm_config()
    torch.manual_seed(0)
    model = get_family("optcwm").build_model(cfg).eval()
    opt = Run(Path("opt"), cfg, model, None, None)
    base = Run(Path("base"), {**cfg, "model_family": "cwm"}, model.base, None, None)
    images = np.random.default_rng(0).random((3, 3, 40, 40), dtype=np.float32)
    assert input_size(opt) == input_size(base) == 32
    assert layer_dims(opt) == layer_dims(base) and layer_areas(opt) == layer_areas(base)
    got, want = layer_responses(opt, images, progress=False), layer_responses(base, images, progress=False)
    assert list(got) == list(want) and all(np.array_equal(got[k], want[k]) for k in got)


# ------------------------------------------------------------------------------------------------ no string switches
def _family_switches(source: str, names: set[str]) -> list[int]:
    """Line numbers of comparisons that decide on a family name: against a family-name string (or a
    tuple/list/set of them), or of a ``model_family`` value read from a config; and ``hasattr(task, ...)``."""

    def is_name(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(isinstance(e, ast.Constant) and e.value in names for e in node.elts)
        return False

    def reads_family(node: ast.AST) -> bool:
        if isinstance(node, ast.Subscript):
            return isinstance(node.slice, ast.Constant) and node.slice.value == "model_family"
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr == "get" and node.args:
                return isinstance(node.args[0], ast.Constant) and node.args[0].value == "model_family"
            return isinstance(f, ast.Name) and f.id in ("model_family", "family_name")
        return False

    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(is_name(s) or reads_family(s) for s in sides):
                hits.append(node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "hasattr"
            and node.args
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id == "task"
        ):
            hits.append(node.lineno)
    return hits


SWITCHES = [  # the switches the registry replaced (oracle: each must be found)
    'if family == "tdann":\n    pass',
    'family = "cwm" if family == "optcwm" else family',
    'if family is not None and family not in ("cwm", "optcwm"):\n    pass',
    'if model_family(run) == "cwm":\n    pass',
    'areas = layer_areas(run) if model_family(run) == "cwm" else None',
    'if r.config.get("model_family", "tdann") != "tdann" or arch not in _ARCHS:\n    pass',
    'if cfg.get("model_family") == "optcwm":\n    pass',
    'if bcfg.get("model_family") != base:\n    pass',
    'if cfg["model_family"] in KNOWN:\n    pass',
    "if family_name(cfg) != other:\n    pass",
    'ok = "tdann" == fam',
    'if hasattr(task, "validate"):\n    pass',
]
CLEAN = [  # what must not be flagged
    "fam = family_of(cfg)\nalpha = fam.default_alpha",
    'if cfg["objective"] == "simclr":\n    pass',
    "if name != other.name and x is not None:\n    pass",
    'config = {"model_family": "cwm", "arch": "tiny"}',
    'if hasattr(trunk, "forward_blocks"):\n    pass',
    'label = "cwm"',
]


@pytest.mark.parametrize("snippet", SWITCHES)
def test_scanner_finds_every_kind_of_family_switch(snippet):
    assert _family_switches(snippet, set(family_names())), snippet


@pytest.mark.parametrize("snippet", CLEAN)
def test_scanner_leaves_other_code_alone(snippet):
    assert _family_switches(snippet, set(family_names())) == []


def test_no_family_switch_outside_the_registry():
    names = set(family_names())
    files = sorted(PACKAGE.rglob("*.py"))
    registry = {PACKAGE / "families.py", PACKAGE / "family_configs.py"}
    assert len(files) > 50 and registry <= set(files)
    found = [
        f"{p.relative_to(PACKAGE)}:{line}"
        for p in files
        if p not in registry
        for line in _family_switches(p.read_text(encoding="utf-8"), names)
    ]
    assert found == [], "decide by neurocwm.families, not by the family's name: " + ", ".join(found)


# ------------------------------------------------------------------------------------------------ the task interface
class _Regression(Task):
    """The smallest task: fit ``y = x @ w_true`` with a bias-free linear layer; only the core methods."""

    name = "regression"
    W_TRUE = torch.tensor([[1.0, -2.0, 0.5]])

    def default_config(self, device_type):
        return {
            "batch_size": 4,
            "steps": 3,
            "lr": 0.1,
            "momentum": 0.9,
            "checkpoint_every": 100,
            "warmup_steps": 0,
            "validate_every": 1,
        }

    def validate_config(self, cfg):
        return cfg

    def build_model(self, cfg):
        return nn.Linear(3, 1, bias=False)

    def setup(self, cfg, model, run_dir, device, is_main, barrier):
        self.cfg = cfg

    @staticmethod
    def batch(step):
        x = torch.from_numpy(np.random.default_rng(step).standard_normal((4, 3)).astype(np.float32))
        return {"x": x, "y": x @ _Regression.W_TRUE.T}

    def make_batches(self, cfg, rank, world, start_step, device):
        step = start_step
        while True:
            yield self.batch(step)
            step += 1

    def compute_loss(self, model, batch, step, rank=0):
        loss = ((model(batch["x"]) - batch["y"]) ** 2).mean()
        return loss, {"loss": float(loss.detach())}


def test_task_is_abstract_and_its_hooks_have_defaults():
    class Partial(Task):
        def default_config(self, device_type):
            return {}

    with pytest.raises(TypeError, match="abstract"):
        Partial()
    task, model = _Regression(), nn.Linear(3, 2)
    groups = task.param_groups(model, {})
    assert [p is q for p, q in zip(groups[0]["params"], model.parameters())] == [True, True]
    opt = task.make_optimizer(groups, {"lr": 0.5, "momentum": 0.8})
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["lr"] == 0.5 and opt.defaults["momentum"] == 0.8
    assert opt.defaults["weight_decay"] == 0.0
    assert task.validate(model, 1) == {} and task.check_inputs({}, model) is None
    from neurocwm.cwm.task import CWMTask, OptCWMTask
    from neurocwm.tdann import TDANNTask

    assert all(issubclass(c, Task) for c in (TDANNTask, CWMTask, OptCWMTask))


def test_fit_trains_a_task_with_default_hooks_as_plain_sgd(tmp_path):
    """Oracle: the trainer with the default hooks is SGD with momentum on the cosine schedule, written out by hand."""
    torch.manual_seed(0)
    out = fit({"out": str(tmp_path / "run"), "device": "cpu", "progress": False, "seed": 0}, _Regression())
    torch.manual_seed(0)
    w = nn.Linear(3, 1, bias=False).weight.detach().clone()
    buf = None
    for step in range(3):
        b = _Regression.batch(step)
        w.requires_grad_(True)
        loss = ((b["x"] @ w.T - b["y"]) ** 2).mean()
        (g,) = torch.autograd.grad(loss, w)
        w = w.detach()
        buf = g if buf is None else 0.9 * buf + g
        w = w - cosine_lr(0.1, step, 3) * buf
    got = load_file(str(out / "model.safetensors"))["weight"]
    torch.testing.assert_close(got, w, rtol=1e-6, atol=1e-7)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3  # validate() ran every step and added nothing


def test_fit_refuses_an_object_that_is_not_a_task(tmp_path):
    class DuckTask:
        name = "duck"

    with pytest.raises(TypeError, match="fit needs a neurocwm.train.task.Task, got DuckTask"):
        fit({"out": str(tmp_path / "run")}, DuckTask())
    assert not (tmp_path / "run").exists()


def test_fit_resume_continues_an_optcwm_run_with_its_own_task(tmp_path):
    """``neurocwm fit --resume`` takes the task from the run's family: an Opt-CWM run resumed on the command
    line ends with the same weights as the same run resumed through :class:`neurocwm.cwm.task.OptCWMTask`."""
    from neurocwm.cli import main
    from neurocwm.cwm.task import OptCWMTask

    base = tmp_path / "base"
    train_smoke_cwm(base)
    opts = optcwm_options(base, checkpoint_every=1, validate_every=0)
    for name in ("cli", "api"):
        fit({**opts, "steps": 1, "out": str(tmp_path / name)}, OptCWMTask())
    assert main(["fit", "--resume", "--out", str(tmp_path / "cli"), "--steps", "2", "--no-progress"]) == 0
    fit({**opts, "steps": 2, "resume": True, "out": str(tmp_path / "api")}, OptCWMTask())
    got = load_file(str(tmp_path / "cli" / "model.safetensors"))
    want = load_file(str(tmp_path / "api" / "model.safetensors"))
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in got)
    step1 = load_file(str(tmp_path / "cli" / "checkpoints" / "step_0000001" / "model.safetensors"))
    assert any(not torch.equal(got[k], step1[k]) for k in got)  # step 2 was trained
