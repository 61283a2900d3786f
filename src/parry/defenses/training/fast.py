"""The Trainer's fast path: channels-last memory layout and bf16 autocast where the hardware has it.

During the training steps of a fast run, the model's 4-D weights and the input batches are held
in the channels-last layout (oneDNN's and cuDNN's faster convolution and pooling path: the same
function up to float rounding), and the forward passes run under bf16 autocast when the device
supports bf16 natively (AVX512-BF16 or AMX on CPUs, ``torch.cuda.is_bf16_supported()`` on
GPUs). The classifier's logits are cast back to fp32 before any loss, so every loss, softmax,
KL term and success check is computed in fp32; the held-out evaluation runs outside the fast
path altogether, in fp32. Where bf16 is not supported the fast path is channels-last only.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Iterator

import torch
from torch import Tensor, nn


def bf16_supported(device: torch.device | str) -> bool:
    """Whether ``device`` runs bf16 natively (so bf16 autocast speeds training up rather than slowing it)."""
    device = torch.device(device)
    if device.type == "cpu":
        amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
        return bool(avx512_bf16() or amx())
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return False


@dataclass(frozen=True)
class FastPath:
    """What a run's fast path uses: ``channels_last`` layout and ``autocast`` dtype (None: fp32)."""

    channels_last: bool = False
    autocast: str | None = None

    @classmethod
    def choose(cls, fast: bool, device: torch.device | str) -> "FastPath":
        """The fast path for ``device`` (all off when ``fast`` is False)."""
        if not isinstance(fast, bool):
            raise ValueError(f"fast: expected a bool, got {fast!r}")
        if not fast:
            return cls()
        return cls(channels_last=True, autocast="bfloat16" if bf16_supported(device) else None)

    @property
    def enabled(self) -> bool:
        return self.channels_last or self.autocast is not None

    def params(self) -> dict[str, Any]:
        """JSON-friendly description (for the recipe)."""
        return asdict(self)

    def batch(self, x: Tensor) -> Tensor:
        """``x`` in the run's memory layout."""
        if self.channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    @contextmanager
    def weights(self, model: nn.Module) -> Iterator[None]:
        """Hold the model's 4-D weights in the channels-last layout for the duration (the
        parameters' own objects keep their identity, so an optimiser keeps tracking them); they
        are back in the contiguous layout afterwards, also when the body raises."""
        kernels = [p for p in model.parameters() if p.ndim == 4] if self.channels_last else []
        try:
            for p in kernels:
                # .to, not .contiguous: a (C_out, 1, k, k) kernel counts as contiguous in both
                # layouts, and only real channels-last strides make oneDNN use the layout
                p.data = p.data.to(memory_format=torch.channels_last)
            yield
        finally:
            for p in kernels:
                p.data = p.data.contiguous()

    @contextmanager
    def step(self, model: nn.Module, device: torch.device) -> Iterator[None]:
        """One training step's autocast (when bf16 is used), with the model's outputs cast to fp32."""
        if self.autocast is None:
            yield
            return
        with ExitStack() as stack:
            handle = model.register_forward_hook(lambda _module, _args, output: output.float())
            stack.callback(handle.remove)
            stack.enter_context(torch.autocast(device.type, dtype=getattr(torch, self.autocast)))
            yield
