"""Optional FP8 (e4m3) linear layers for Hopper GPUs: an opt-in speed/accuracy trade.

Owns: `FP8Linear` (weights quantized once to float8_e4m3fn with one scale per output
channel; activations quantized per call with one scale per row; the product through
`torch._scaled_mm` with row-wise scales and a bf16 output) and `apply_fp8(model, parts)`,
which swaps the `nn.Linear` modules of the SigLIP encoder layers and/or the Qwen2 decoder
layers in place. The embedding, the LM head, DTS and the projector stay in their dtype.

On a device without FP8 matrix units (the CPU, pre-Hopper GPUs) the same quantization is
simulated by dequantizing and multiplying in the input dtype, so the accuracy effect can
be tested anywhere; only the speed needs an H100.

Does not: calibrate static scales, quantize the KV cache or attention (SDPA stays bf16),
or change anything unless `apply_fp8` is called (the default model is untouched).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

E4M3 = torch.float8_e4m3fn
E4M3_MAX = 448.0
PARTS = ("vision", "llm")


def fp8_supported(device: torch.device) -> bool:
    """True where torch._scaled_mm runs natively (CUDA compute capability >= 8.9)."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 9)


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] -> (e4m3 [M, K], fp32 scale [M, 1]) with x ~= q * scale per row."""
    amax = x.abs().amax(dim=1, keepdim=True).float().clamp_min(1e-12)
    scale = amax / E4M3_MAX
    return (x.float() / scale).clamp_(-E4M3_MAX, E4M3_MAX).to(E4M3), scale


def fp8_linear(x: torch.Tensor, w8: torch.Tensor, w_scale: torch.Tensor,
               bias: torch.Tensor | None, out_dtype: torch.dtype, native: bool) -> torch.Tensor:
    """x [..., in] @ (w8 * w_scale).T + bias with x quantised per row; w8 [out, in] e4m3,
    w_scale [1, out]. Plain tensor code, so that torch.compile fuses the activation
    quantisation (amax, scale, cast) into the producer of x (RMSNorm, GELU)."""
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    m = x2.shape[0]
    x8, x_scale = quantize_rows(x2)
    if native:
        pad = (-m) % 16  # cuBLASLt wants the row count a multiple of 16
        if pad:
            x8 = torch.cat([x8, x8.new_zeros(pad, x8.shape[1])])
            x_scale = torch.cat([x_scale, x_scale.new_ones(pad, 1)])
        out = torch._scaled_mm(x8, w8.t(), scale_a=x_scale, scale_b=w_scale,
                               out_dtype=out_dtype)[:m]
    else:  # simulated: same quantization, product in the input dtype
        xd = (x8.float() * x_scale).to(x.dtype)
        wd = (w8.float() * w_scale.t()).to(x.dtype)
        out = (xd @ wd.t()).to(out_dtype)
    if bias is not None:
        out = out + bias
    return out.view(*lead, w8.shape[0])


class FP8Linear(nn.Module):
    """Drop-in replacement of an nn.Linear (same in/out features, same bias)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w8, w_scale = quantize_rows(linear.weight.detach())  # per output channel
        self.register_buffer("weight_fp8", w8)  # [out, in], row-major
        self.register_buffer("weight_scale", w_scale.t().contiguous())  # [1, out]
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(),
                                                                  requires_grad=False)
        self.out_dtype = linear.weight.dtype
        self.native = fp8_supported(linear.weight.device) and self.out_dtype == torch.bfloat16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fp8_linear(x, self.weight_fp8, self.weight_scale, self.bias, self.out_dtype,
                          self.native)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"native={self.native}"


def _swap_linears(module: nn.Module) -> int:
    n = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear):
            setattr(module, name, FP8Linear(child))
            n += 1
        else:
            n += _swap_linears(child)
    return n


def apply_fp8(model: nn.Module, parts: Iterable[str] = PARTS) -> int:
    """Swap the linear layers of the named parts ("vision": SigLIP encoder layers,
    "llm": Qwen2 decoder layers) for FP8Linear; returns how many were swapped."""
    parts = tuple(parts)
    for p in parts:
        if p not in PARTS:
            raise ValueError(f"fp8 part must be one of {PARTS}, got {p!r}")
    n = 0
    if "vision" in parts:
        tower = model.model.vision_tower.vision_tower.vision_model.encoder
        n += _swap_linears(tower)
    if "llm" in parts:
        n += _swap_linears(model.model.layers)
    return n
