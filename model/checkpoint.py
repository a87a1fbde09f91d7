"""Checkpoint I/O for Video-XL-2: local directory in, model out; model in, shards out.

Owns: `load_model` (config.json + tokenizer files + safetensors, single file or sharded
with an index; missing, unexpected and wrongly shaped keys are refused by name; never
touches the network), `write_checkpoint` (sharded safetensors + index + config.json +
tokenizer), `build_random` (random init directly on a device, via the meta device),
`init_weights`, and `inspect_checkpoint` (reads only safetensors headers, so it works on a
16 GB checkpoint without loading it).

Does not: download anything, convert other layouts, or quantize.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model.configs import VideoXL2Config
from model.layers import RMSNorm
from model.videoxl2 import VideoXL2ForCausalLM

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
DEFAULT_SHARD_BYTES = 4 * 1024**3
VISION_PREFIX = "model.vision_tower.vision_tower.vision_model."
# Keys the released checkpoint may hold but the forward pass never uses.
_IGNORED = (
    re.compile(r".*rotary_emb\.inv_freq$"),
    re.compile(re.escape(VISION_PREFIX) + r"head\."),
)
# Keys that may be absent: unused by the forward pass, filled with their default init.
_OPTIONAL = (re.compile(re.escape(VISION_PREFIX) + r"post_layernorm\."),)
_SAFETENSORS_DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "F8_E4M3": 1, "F8_E5M2": 1}


class CheckpointError(ValueError):
    """The checkpoint directory cannot be loaded; the message names the path or keys."""


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: str
    file: str


@dataclass(frozen=True)
class CheckpointInfo:
    path: str
    config: VideoXL2Config
    tensors: dict[str, TensorInfo]
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong_shapes: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)


# ---- reading -------------------------------------------------------------------------------


def read_config(path: Path) -> tuple[VideoXL2Config, dict[str, Any]]:
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"checkpoint directory {str(path)!r} has no config.json")
    try:
        raw = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{cfg_file}: not valid JSON ({exc})") from exc
    return VideoXL2Config.from_json_dict(raw), raw


def read_header(file: Path) -> dict[str, TensorInfo]:
    """Names, shapes and dtypes from one safetensors file's header (no tensor data)."""
    with open(file, "rb") as fh:
        prefix = fh.read(8)
        if len(prefix) != 8:
            raise CheckpointError(f"{file}: not a safetensors file (too short)")
        (size,) = struct.unpack("<Q", prefix)
        try:
            header = json.loads(fh.read(size))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{file}: corrupt safetensors header ({exc})") from exc
    header.pop("__metadata__", None)
    return {k: TensorInfo(tuple(v["shape"]), v["dtype"], file.name) for k, v in header.items()}


def weight_files(path: Path) -> list[Path]:
    index = path / INDEX_FILE
    if index.is_file():
        weight_map = json.loads(index.read_text()).get("weight_map", {})
        files = sorted(set(weight_map.values()))
        absent = [f for f in files if not (path / f).is_file()]
        if absent:
            raise CheckpointError(f"{index}: shard files listed but absent: {absent}")
        return [path / f for f in files]
    if (path / SINGLE_FILE).is_file():
        return [path / SINGLE_FILE]
    found = sorted(path.glob("*.safetensors"))
    if not found:
        raise CheckpointError(f"checkpoint directory {str(path)!r} has no *.safetensors weights")
    return found


def _vision_layers_in(tensors: Iterable[str]) -> int:
    pat = re.compile(re.escape(VISION_PREFIX) + r"encoder\.layers\.(\d+)\.")
    found = [int(m.group(1)) for k in tensors if (m := pat.match(k))]
    return max(found) + 1 if found else 0


def _ignored(key: str, cfg: VideoXL2Config, drop_extra_vision: bool) -> bool:
    if any(p.match(key) for p in _IGNORED):
        return True
    if drop_extra_vision:  # a 27-layer tower saved whole: the released code drops the last
        m = re.match(re.escape(VISION_PREFIX) + r"encoder\.layers\.(\d+)\.", key)
        return bool(m) and int(m.group(1)) >= cfg.vision.num_hidden_layers
    return False


_INIT_FUNCTIONS = ("normal_", "uniform_", "kaiming_uniform_", "xavier_uniform_", "zeros_", "ones_")


def meta_model(cfg: VideoXL2Config) -> VideoXL2ForCausalLM:
    """Build the model on the meta device with the default initialisers disabled: they
    are wasted work there, and random init of meta tensors imports torch._dynamo (3 s).
    The patch is process-wide for the few milliseconds of construction; model building is
    not done concurrently from several threads here."""
    saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS}
    try:
        for name in _INIT_FUNCTIONS:
            setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
        with torch.device("meta"):
            model = VideoXL2ForCausalLM(cfg)
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)
    return model


def expected_shapes(cfg: VideoXL2Config) -> dict[str, tuple[int, ...]]:
    model = meta_model(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def inspect_checkpoint(path: str | Path) -> CheckpointInfo:
    """Compare a checkpoint's headers with the model its config.json describes."""
    root = Path(path)
    if not root.is_dir():
        raise CheckpointError(f"checkpoint directory {str(root)!r} does not exist")
    cfg, raw = read_config(root)
    tensors: dict[str, TensorInfo] = {}
    for file in weight_files(root):
        tensors.update(read_header(file))
    drop_extra = (
        "vision_config" not in raw and _vision_layers_in(tensors) > cfg.vision.num_hidden_layers
    )
    expected = expected_shapes(cfg)
    present = {k for k in tensors if not _ignored(k, cfg, drop_extra)}
    missing = sorted(k for k in expected if k not in present and not _optional(k))
    unexpected = sorted(present - set(expected))
    wrong = [
        (k, tensors[k].shape, expected[k])
        for k in sorted(present & set(expected))
        if tensors[k].shape != expected[k]
    ]
    return CheckpointInfo(str(root), cfg, tensors, missing, unexpected, wrong)


def _optional(key: str) -> bool:
    return any(p.match(key) for p in _OPTIONAL)


def _check(info: CheckpointInfo) -> None:
    problems = []
    if info.missing:
        problems.append(f"missing keys ({len(info.missing)}): {_names(info.missing)}")
    if info.unexpected:
        problems.append(f"unexpected keys ({len(info.unexpected)}): {_names(info.unexpected)}")
    for key, got, want in info.wrong_shapes[:10]:
        problems.append(f"wrong shape for {key}: checkpoint {list(got)}, model {list(want)}")
    if problems:
        raise CheckpointError(f"checkpoint {info.path!r}: " + "; ".join(problems))


def _names(keys: list[str], limit: int = 20) -> str:
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


# ---- loading -------------------------------------------------------------------------------


def load_tokenizer(path: Path) -> Any:
    if not ((path / "tokenizer.json").is_file() or (path / "vocab.json").is_file()):
        raise CheckpointError(
            f"checkpoint directory {str(path)!r} has no tokenizer files "
            "(tokenizer.json or vocab.json + merges.txt)"
        )
    from transformers import AutoTokenizer
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    # Resolve the class from tokenizer_config.json directly: AutoTokenizer would also parse
    # config.json, whose `llava_qwen` model type transformers does not know.
    cfg_file = path / "tokenizer_config.json"
    name = json.loads(cfg_file.read_text()).get("tokenizer_class") if cfg_file.is_file() else None
    cls = tokenizer_class_from_name(name) if name else None
    if cls is None:
        cls = AutoTokenizer
    return cls.from_pretrained(str(path), local_files_only=True)


def load_model(
    path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> VideoXL2ForCausalLM:
    """Load a Video-XL-2 checkpoint from a local directory (never the network)."""
    root = Path(path)
    info = inspect_checkpoint(root)
    _check(info)
    tokenizer = load_tokenizer(root)
    model = meta_model(info.config)
    expected = set(model.state_dict())
    state: dict[str, torch.Tensor] = {}
    from safetensors import safe_open

    for file in weight_files(root):
        with safe_open(str(file), framework="pt", device=str(torch.device(device))) as fh:
            for key in fh.keys():
                if key in expected:
                    state[key] = fh.get_tensor(key).to(dtype)
    for key in sorted(expected - set(state)):  # optional keys: default init
        meta = model.get_parameter(key)
        fill = 1.0 if key.endswith("weight") else 0.0
        state[key] = torch.full(meta.shape, fill, dtype=dtype, device=device)
    model.load_state_dict(state, strict=True, assign=True)
    model.eval().requires_grad_(False)
    model.attach_tokenizer(tokenizer)
    return model


# ---- building and writing ------------------------------------------------------------------


@torch.no_grad()
def init_weights(model: nn.Module, std: float = 0.02) -> None:
    """Random init in place: norm weights ~ 1 + N(0, std), everything else ~ N(0, std)."""
    norms = (nn.LayerNorm, nn.GroupNorm, RMSNorm)
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            mean = 1.0 if isinstance(module, norms) and name == "weight" else 0.0
            param.normal_(mean, std)


def build_random(
    config: VideoXL2Config,
    device: str | torch.device = "cuda",
    dtype: torch.dtype = torch.bfloat16,
    seed: int = 0,
    std: float = 0.02,
    tokenizer: Any = "tiny",
) -> VideoXL2ForCausalLM:
    """A randomly initialised model allocated directly on `device` in `dtype` (built on
    the meta device first, so nothing is allocated on the CPU or in fp32). The tiny
    byte-level tokenizer is attached by default (its ids fit any vocabulary), so the
    prompt builder works and `write_checkpoint` writes a loadable directory."""
    model = meta_model(config).to(dtype)
    model.to_empty(device=device)
    torch.manual_seed(seed)
    init_weights(model, std)
    model.eval().requires_grad_(False)
    if isinstance(tokenizer, str) and tokenizer == "tiny":
        from model.tiny import build_tiny_tokenizer

        tokenizer = build_tiny_tokenizer()
    if tokenizer is not None:
        model.attach_tokenizer(tokenizer)
    return model


def write_checkpoint(
    model: VideoXL2ForCausalLM,
    directory: str | Path,
    max_shard_bytes: int | None = DEFAULT_SHARD_BYTES,
) -> Path:
    """config.json, safetensors (one file, or shards + index when larger than
    max_shard_bytes) and the attached tokenizer's files."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(model.config.to_json_dict(), indent=2) + "\n")
    state = model.state_dict()
    shards = _plan_shards(state, max_shard_bytes)
    meta = {"format": "pt"}
    if len(shards) == 1:
        save_file(
            {k: state[k].detach().cpu().contiguous() for k in shards[0]},
            str(out / SINGLE_FILE),
            meta,
        )
    else:
        weight_map = {}
        for i, keys in enumerate(shards, start=1):
            name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            save_file(
                {k: state[k].detach().cpu().contiguous() for k in keys}, str(out / name), meta
            )
            weight_map.update(dict.fromkeys(keys, name))
        total = sum(t.numel() * t.element_size() for t in state.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (out / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    if model.tokenizer is not None:
        model.tokenizer.save_pretrained(str(out))
    return out


def _plan_shards(state: dict[str, torch.Tensor], max_bytes: int | None) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if max_bytes is not None and shards[-1] and size + nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(key)
        size += nbytes
    return shards


def dtype_bytes(name: str) -> int:
    return _SAFETENSORS_DTYPES.get(name, 2)
