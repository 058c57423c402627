# SPDX-License-Identifier: Apache-2.0
"""A small PyTorch training loop with NVTX step ranges and no tfprof in it, for tests/gpu: run
under tfprof-start, its profile must hold every step, with the GPU work each step launched.
Usage: torch_loop.py STEPS"""
import sys

import torch

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 1024)).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(256, 1024)
for step in range(steps):
    torch.cuda.nvtx.range_push(f"step {step}")
    loss = model(x.cuda()).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    torch.cuda.synchronize()
    torch.cuda.nvtx.range_pop()
print("loss", loss.item())
