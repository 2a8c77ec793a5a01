"""CUDA graphs for the GAN's updates: one captured graph per kind of update, replayed every time.

A wav2vec-U-size update is a few hundred small kernels; launched one by one from Python they take several
times longer than the GPU needs to run them (H100, README "Speed"). A captured graph launches them all at
once. It needs one shape for every replay, so the trainer pads every batch to one width (the data's longest
sequence), and the losses are written so that wider padding gives the same values.

Capture needs a few eager warm-up runs first (cuBLAS/cuDNN handles, the optimisers' lazily made state).
Those would be extra updates, so the step's modules and optimiser state are put back exactly as they were.
"""

from __future__ import annotations

from typing import Callable

import torch

Step = Callable[..., dict[str, torch.Tensor]]


class CapturedStep:
    """`step(*inputs)` captured as a CUDA graph; calling it copies new inputs in and replays.

    Args:
        step: one whole update (forward, backward, optimiser step) returning its logged scalars.
        inputs: example device tensors, the shapes and dtypes of every later call's.
        modules: every module whose parameters or buffers the step changes.
        optimizers: every optimiser the step steps.
        warmup: eager runs before the capture (undone afterwards).
    """

    def __init__(self, step: Step, inputs: list[torch.Tensor], modules: list[torch.nn.Module],
                 optimizers: list[torch.optim.Optimizer], warmup: int = 3) -> None:
        self.inputs = [t.clone() for t in inputs]
        saved = _snapshot(modules, optimizers)
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(warmup):
                    step(*self.inputs)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.outputs = step(*self.inputs)
        finally:  # captured or not, the warm-up leaves no trace
            _restore(saved, optimizers)

    def __call__(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        for static, new in zip(self.inputs, inputs):
            static.copy_(new, non_blocking=True)
        self.graph.replay()
        # The outputs are overwritten by the next replay: callers get their own copies.
        return {name: value.clone() for name, value in self.outputs.items()}


def _snapshot(modules: list[torch.nn.Module],
              optimizers: list[torch.optim.Optimizer]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    tensors = [t for m in modules for t in list(m.parameters()) + list(m.buffers())]
    tensors += [v for opt in optimizers for state in opt.state.values() for v in state.values()
                if isinstance(v, torch.Tensor)]
    return [(t, t.detach().clone()) for t in tensors]


def _restore(saved: list[tuple[torch.Tensor, torch.Tensor]], optimizers: list[torch.optim.Optimizer]) -> None:
    """Copy every saved tensor back in place (the graph holds their addresses); optimiser state that the
    warm-up created is zeroed, which for Adam is the state of one that never stepped."""
    kept = {id(t) for t, _ in saved}
    with torch.no_grad():
        for tensor, copy in saved:
            tensor.copy_(copy)
        for opt in optimizers:
            for state in opt.state.values():
                for value in state.values():
                    if isinstance(value, torch.Tensor) and id(value) not in kept:
                        value.zero_()
