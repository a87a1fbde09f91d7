"""VideoXL2ForCausalLM: SigLIP -> resize to 24x24 -> DTS -> projector -> 2x2 pool, and
the Qwen2 decoder, with attribute names equal to the released checkpoint keys.

Owns: `encode_video` (frames -> [G, 144, hidden] per 4-frame group) and dense reference
passes (`forward_text`, `forward_multimodal`) used by tests and the engine's reference
checks.

Does not: load weights (model.checkpoint), assemble prompts (model.prompt), or keep any
KV memory (model.engine).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.configs import VideoXL2Config
from model.dts import SiglipAE, groups_from_frames
from model.preprocess import preprocess_frames
from model.projector import build_projector, pool_grid
from model.qwen2 import Qwen2Model
from model.siglip import SigLipVisionTower

VISION_BATCH_FRAMES = 64  # frames per SigLIP call: bounds activation memory
DTS_BATCH_GROUPS = 24  # groups per DTS call, as released


class VideoXL2Model(Qwen2Model):
    """The decoder (`embed_tokens`, `layers`, `norm`) plus the vision path modules."""

    def __init__(self, cfg: VideoXL2Config) -> None:
        super().__init__(cfg.text)
        self.vision_tower = SigLipVisionTower(cfg.vision)
        self.sae = SiglipAE(cfg.dts)
        self.mm_projector = build_projector(cfg.vision.hidden_size, cfg.text.hidden_size)


class VideoXL2ForCausalLM(nn.Module):
    def __init__(self, config: VideoXL2Config) -> None:
        super().__init__()
        self.config = config
        self.model = VideoXL2Model(config)
        self.lm_head = nn.Linear(config.text.hidden_size, config.text.vocab_size, bias=False)
        self.tokenizer: Any = None  # attached by load_model / make_tiny
        self.prompt: Any = None  # PromptBuilder, attached with the tokenizer
        self.vision_batch = VISION_BATCH_FRAMES
        self._vision_fn: Any = None  # compiled tower (compile_vision); None: eager
        self._sae_fn: Any = None  # compiled DTS (compile_vision); None: eager

    def fuse_vision(self) -> int:
        """SigLIP's q/k/v as one product per layer (model.fuse; same values, same keys);
        returns how many layers were fused."""
        layers = self.model.vision_tower.vision_tower.vision_model.encoder.layers
        return sum(layer.self_attn.fuse() for layer in layers)

    def compile_vision(self, mode: str | None = None) -> None:
        """Run the SigLIP tower and DTS through torch.compile from now on (GPU speed; the module
        and its checkpoint keys are unchanged). Each distinct frame-batch size compiles
        once, so callers keep batch sizes few (vision_batch and the remainders)."""
        self.fuse_vision()
        self._vision_fn = torch.compile(self.model.vision_tower, mode=mode, dynamic=False)
        self._sae_fn = torch.compile(self.model.sae, mode=mode, dynamic=False)

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    def attach_tokenizer(self, tokenizer: Any) -> None:
        from model.prompt import PromptBuilder

        self.tokenizer = tokenizer
        self.prompt = PromptBuilder(tokenizer)

    # ---- vision path -------------------------------------------------------------------

    def _padded(self, fn: Any, x: torch.Tensor, size: int) -> torch.Tensor:
        """fn(x); when compiled, x goes in contiguous and a short last batch is padded to
        `size` (repeating its last item, dropped from the output), so that every call has
        the same shape and strides: either change recompiles the tower (20-40 s on an
        H100; a channels-last view against a padded copy once cost a 10,000-frame run 25 s)."""
        n = x.shape[0]
        if self._vision_fn is None:
            return fn(x)
        if n == size:
            return fn(x.contiguous())
        return fn(torch.cat([x, x[-1:].expand(size - n, *x.shape[1:])]).contiguous())[:n]

    def frame_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [F, 3, S, S] -> SigLIP features resized to [F, C, 24, 24] (fp32 resize,
        bilinear, as released), in the model dtype."""
        grid = self.config.feature_grid
        side = self.config.vision.patches_per_side
        out = []
        tower = self.model.vision_tower if self._vision_fn is None else self._vision_fn
        for batch in pixels.split(self.vision_batch):
            feats = self._padded(tower, batch, self.vision_batch)  # [f, side*side, C]
            f, _, c = feats.shape
            maps = resize_bilinear(feats.view(f, side, side, c), grid)  # [f, grid, grid, C]
            out.append(maps.to(feats.dtype).permute(0, 3, 1, 2))
        return torch.cat(out)  # [F, C, grid, grid]

    def groups_to_tokens(self, feats: torch.Tensor) -> torch.Tensor:
        """[F, C, 24, 24] with F a multiple of 4 -> [G, 144, hidden]."""
        grid = self.config.feature_grid
        blocks = groups_from_frames(feats, self.config.dts.group_frames)  # [G, C, 4, h, w]
        outs = []
        sae = self.model.sae if self._sae_fn is None else self._sae_fn
        for chunk in blocks.split(DTS_BATCH_GROUPS):
            y = self._padded(sae, chunk, DTS_BATCH_GROUPS).squeeze(2)  # [g, C, h, w]
            y = y.permute(0, 2, 3, 1).reshape(y.shape[0], grid * grid, -1)  # [g, 576, C]
            y = self.model.mm_projector(y)  # [g, 576, hidden]
            outs.append(pool_grid(y, grid, self.config.pool_stride))  # [g, 144, hidden]
        return torch.cat(outs)

    @torch.inference_mode()
    def encode_video(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 RGB [F, H, W, 3] -> [ceil(F/4), 144, hidden] in the model dtype/device.
        The last frame's features are repeated to fill the last group of 4."""
        pixels = preprocess_frames(frames, self.config.vision.image_size, self.device, self.dtype)
        feats = self.frame_features(pixels)
        n = feats.shape[0]
        group = self.config.dts.group_frames
        padded = math.ceil(n / group) * group
        if padded != n:
            feats = torch.cat([feats, feats[-1:].expand(padded - n, -1, -1, -1)])
        return self.groups_to_tokens(feats)

    # ---- dense reference passes --------------------------------------------------------

    def embed_multimodal(
        self,
        input_ids: torch.Tensor,
        vision_positions: list[int] | torch.Tensor | None = None,
        vision_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Embeddings [1, T, hidden] of input_ids [1, T] with the vision-pad slots at
        vision_positions replaced by vision_tokens [G, 144, hidden] flattened in order."""
        embeds = self.model.embed_tokens(input_ids.to(self.device))
        if vision_tokens is None:
            return embeds
        flat = vision_tokens.reshape(-1, vision_tokens.shape[-1]).to(embeds.dtype)
        pos = torch.as_tensor(vision_positions, device=embeds.device, dtype=torch.long)
        if pos.numel() != flat.shape[0]:
            raise ValueError(f"vision_positions={pos.numel()} != vision tokens {flat.shape[0]}")
        embeds = embeds.clone()
        embeds[0, pos] = flat
        return embeds

    @torch.inference_mode()
    def forward_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Dense causal forward over input_ids [1, T] -> logits [1, T, V]."""
        return self.lm_head(self.model.forward_embeds(self.embed_multimodal(input_ids)))

    @torch.inference_mode()
    def forward_multimodal(
        self,
        input_ids: torch.Tensor,
        vision_positions: list[int] | torch.Tensor,
        vision_tokens: torch.Tensor,
    ) -> torch.Tensor:
        """Dense causal forward over a whole prompt (the released layout, one L x L causal
        pass) -> logits [1, T, V]. The reference the engine's chunked prefill is checked
        against."""
        embeds = self.embed_multimodal(input_ids, vision_positions, vision_tokens)
        return self.lm_head(self.model.forward_embeds(embeds))


@functools.lru_cache(maxsize=8)
def linear_weights(n_in: int, n_out: int, device: torch.device) -> torch.Tensor:
    """[n_out, n_in] fp32: F.interpolate's 1-D linear resize (align_corners=False) as a
    matrix, read off by resizing the identity (once per size and device)."""
    eye = torch.eye(n_in, device=device)[None]  # [1, n_in (as channels), n_in]
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0].T


def resize_bilinear(maps: torch.Tensor, size: int) -> torch.Tensor:
    """maps [F, H, W, C] (channels last) -> [F, size, size, C] fp32: F.interpolate's
    bilinear resize (align_corners=False) computed as its two separable 1-D resizes, each a
    small matrix product over the channels-last map. Same weights, fp32 as released. On
    CUDA, F.interpolate ran this shape (576 output pixels, 1,152 channels) in its one-
    thread-per-output-pixel kernel: 236 ms of GPU time for 512 frames on an H100
    (docs/BENCHMARKS.md, GPU run 3)."""
    f, h, w, c = maps.shape
    wh = linear_weights(h, size, maps.device)  # [size, H]
    ww = linear_weights(w, size, maps.device)  # [size, W]
    x = torch.matmul(wh, maps.float().reshape(f, h, w * c))  # [F, size, W * C]
    x = torch.matmul(ww, x.reshape(f * size, w, c))  # [F * size, size, C]
    return x.reshape(f, size, size, c)
