#!/usr/bin/env python3
"""Writes tests/fixtures/onecycle_reference.json: PyTorch's OneCycleLR learning rates and Adam
beta1 per step for a few settings, the independent reference for qfae's OneCycle schedule.

Run with Debian's PyTorch: /usr/bin/python3 scripts/make_onecycle_fixture.py
"""
import json
import pathlib

import torch

CASES = [
    dict(max_lr=8e-5, total_steps=300, pct_start=0.15, div_factor=25.0, final_div_factor=1e4),
    dict(max_lr=1e-3, total_steps=37, pct_start=0.3, div_factor=10.0, final_div_factor=100.0),
    dict(max_lr=2e-4, total_steps=7, pct_start=0.15, div_factor=25.0, final_div_factor=1e4),
]


def trace(case):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=case["max_lr"])
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=case["max_lr"], total_steps=case["total_steps"], pct_start=case["pct_start"],
        anneal_strategy="cos", div_factor=case["div_factor"],
        final_div_factor=case["final_div_factor"], cycle_momentum=True, base_momentum=0.85,
        max_momentum=0.95, three_phase=False)
    lrs, beta1s = [], []
    for _ in range(case["total_steps"]):
        group = opt.param_groups[0]
        lrs.append(group["lr"])          # the value the optimizer step uses
        beta1s.append(group["betas"][0])
        opt.step()
        sched.step()
    return dict(case, lr=lrs, beta1=beta1s)


def main():
    out = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
    out.mkdir(parents=True, exist_ok=True)
    data = {"torch_version": torch.__version__, "cases": [trace(c) for c in CASES]}
    (out / "onecycle_reference.json").write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
