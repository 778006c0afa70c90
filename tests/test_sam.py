"""SAM (detectors.sam) against a reference written from the paper's equations (Foret et al., ICLR 2021).

Reference of one step on a mini-batch loss L at w, with SGD (momentum mu, weight decay lambda, lr eta) as
the base optimiser, written from the paper's Algorithm 1 and torch.optim.SGD's documented update:

    g = dL/dw (w);  e = rho * g / ||g||_2;  g_sam = dL/dw (w + e)
    d = g_sam + lambda * w;  b = d (first step) or mu * b + d;  w <- w - eta * b
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from detectors.sam import SAM


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)


def _model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()


def _loss(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    w1, b1, w2, b2 = params
    return nn.functional.cross_entropy(torch.tanh(x @ w1.T + b1) @ w2.T + b2, y)


def _reference(params, x, y, steps, rho, lr, mu, wd):
    w = [p.detach().clone() for p in params]
    bufs = None
    for _ in range(steps):
        g = torch.autograd.grad(_loss([t.requires_grad_() for t in w], x, y), w)
        norm = torch.sqrt(sum((gi**2).sum() for gi in g))
        e = [rho * gi / norm for gi in g]
        w_adv = [(wi + ei).detach().requires_grad_() for wi, ei in zip(w, e, strict=True)]
        g_sam = torch.autograd.grad(_loss(w_adv, x, y), w_adv)
        d = [gs + wd * wi.detach() for gs, wi in zip(g_sam, w, strict=True)]
        bufs = d if bufs is None else [mu * b + di for b, di in zip(bufs, d, strict=True)]
        w = [(wi.detach() - lr * b).detach() for wi, b in zip(w, bufs, strict=True)]
    return w


@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_two_step_update_matches_the_papers_equations(wd):
    x, y = _data()
    model = _model()
    start = [p.detach().clone() for p in model.parameters()]
    opt = SAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=wd), rho=0.05)
    first_losses = []

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    for _ in range(3):
        first_losses.append(opt.step(closure).item())
    expected = _reference(start, x, y, steps=3, rho=0.05, lr=0.1, mu=0.9, wd=wd)
    for p, e in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.detach(), e, rtol=1e-10, atol=1e-12)
    # step returns the loss at w (before the update), which must decrease over the steps here
    assert first_losses[0] == pytest.approx(_loss(start, x, y).item())
    assert not opt.perturbed and all("sam_e" not in s for s in opt.state.values())


def test_refuses_a_step_without_closure_and_bad_rho():
    model = _model()
    opt = SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.05)
    with pytest.raises(RuntimeError, match="needs a closure"):
        opt.step()
    with pytest.raises(ValueError, match="rho > 0"):
        SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.0)
    with pytest.raises(RuntimeError, match="no parameter has a gradient"):
        opt.first_step()


def test_a_failing_second_pass_restores_the_weights():
    x, y = _data()
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    opt = SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.5)
    calls = []

    def closure():
        calls.append(1)
        if len(calls) == 2:
            raise FloatingPointError("diverged at w + e")
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    with pytest.raises(FloatingPointError):
        opt.step(closure)
    for p, b in zip(model.parameters(), before, strict=True):
        torch.testing.assert_close(p.detach(), b)
    assert not opt.perturbed


def test_shares_groups_and_state_with_the_base_so_schedules_and_checkpoints_work():
    x, y = _data()
    model = _model()
    base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt = SAM(base, rho=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5**e)

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    sched.step()
    assert base.param_groups[0]["lr"] == pytest.approx(
        0.05
    )  # the base optimiser steps with the scheduled rate
    buffer = io.BytesIO()  # a checkpoint on disk: no tensor shared with the running optimiser
    torch.save(opt.state_dict(), buffer)
    state = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    assert state["param_groups"][0]["rho"] == 0.05
    assert all("momentum_buffer" in s for s in state["state"].values())  # the base's momentum is saved

    twin = _model()
    twin.load_state_dict(model.state_dict())
    opt2 = SAM(torch.optim.SGD(twin.parameters(), lr=1.0, momentum=0.9), rho=0.05)
    opt2.load_state_dict(state)
    assert (
        opt2.base.param_groups[0]["lr"] == pytest.approx(0.05) and opt2.param_groups is opt2.base.param_groups
    )

    def closure2():
        opt2.zero_grad()
        loss = nn.functional.cross_entropy(twin(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    opt2.step(closure2)
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
