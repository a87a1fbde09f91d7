"""Checkpoint loading and writing: refusals name the key, sharded checkpoints load, and
nothing touches the network."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from model.checkpoint import (
    CheckpointError,
    build_random,
    inspect_checkpoint,
    load_model,
    write_checkpoint,
)
from model.configs import ConfigError
from model.tiny import tiny_config

EMBED = "model.embed_tokens.weight"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rewrite_weights(directory: Path, edit) -> None:
    file = directory / "model.safetensors"
    state = load_file(str(file))
    edit(state)
    save_file(state, str(file))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_tiny_checkpoint_loads_offline_quickly(tiny_checkpoint_dir: Path, no_network) -> None:
    """Timed after transformers' tokenizer module is imported: that import is a one-off
    per process (about 3 s here), not part of loading a checkpoint."""
    import transformers.models.auto.tokenization_auto  # noqa: F401

    start = time.perf_counter()
    model = load_model(tiny_checkpoint_dir)
    assert time.perf_counter() - start < 2.0
    assert model.dtype == torch.float32 and model.device.type == "cpu"
    assert model.tokenizer is not None and model.prompt.slots_per_group == 144
    names = set(model.state_dict())
    assert "model.vision_tower.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight" in names
    assert {"model.sae.temporal_encoding", "model.mm_projector.2.weight", "lm_head.weight"} <= names


def test_same_seed_gives_same_weights_and_other_seed_differs(tmp_path: Path) -> None:
    from model.tiny import make_tiny_checkpoint

    a = load_file(str(make_tiny_checkpoint(tmp_path / "a", seed=5) / "model.safetensors"))
    b = load_file(str(make_tiny_checkpoint(tmp_path / "b", seed=5) / "model.safetensors"))
    c = load_file(str(make_tiny_checkpoint(tmp_path / "c", seed=6) / "model.safetensors"))
    assert torch.equal(a[EMBED], b[EMBED])
    assert not torch.equal(a[EMBED], c[EMBED])


def test_missing_key_is_refused_by_name(tiny_checkpoint_dir: Path, tmp_path: Path) -> None:
    ckpt = _copy(tiny_checkpoint_dir, tmp_path / "ck")
    _rewrite_weights(ckpt, lambda s: s.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(
        CheckpointError, match=r"missing keys \(1\): model\.layers\.1\.mlp\.up_proj"
    ):
        load_model(ckpt)


def test_unexpected_key_is_refused_by_name(tiny_checkpoint_dir: Path, tmp_path: Path) -> None:
    ckpt = _copy(tiny_checkpoint_dir, tmp_path / "ck")
    _rewrite_weights(ckpt, lambda s: s.update({"model.layers.9.extra.weight": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): model\.layers\.9\.extra"):
        load_model(ckpt)


def test_wrong_shape_is_refused_with_both_shapes(tiny_checkpoint_dir: Path, tmp_path: Path) -> None:
    ckpt = _copy(tiny_checkpoint_dir, tmp_path / "ck")
    _rewrite_weights(ckpt, lambda s: s.update({EMBED: torch.zeros(100, 64)}))
    with pytest.raises(
        CheckpointError,
        match=r"wrong shape for model\.embed_tokens\.weight: "
        r"checkpoint \[100, 64\], model \[512, 64\]",
    ):
        load_model(ckpt)


def test_directory_without_config_fails_clearly(tiny_checkpoint_dir: Path, tmp_path: Path) -> None:
    ckpt = _copy(tiny_checkpoint_dir, tmp_path / "ck")
    (ckpt / "config.json").unlink()
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_model(ckpt)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nowhere")


def test_bad_config_value_is_named(tiny_checkpoint_dir: Path, tmp_path: Path) -> None:
    ckpt = _copy(tiny_checkpoint_dir, tmp_path / "ck")
    raw = json.loads((ckpt / "config.json").read_text())
    raw["mm_projector_type"] = "linear"
    (ckpt / "config.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="mm_projector_type='linear'"):
        load_model(ckpt)


def test_sharded_checkpoint_with_index_loads_identical_weights(
    tiny_model, tmp_path: Path, no_network
) -> None:
    out = write_checkpoint(tiny_model, tmp_path / "sharded", max_shard_bytes=200_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 1 and not (out / "model.safetensors").exists()
    reloaded = load_model(out)
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


def test_released_config_without_vision_sections_defaults_to_so400m(tmp_path: Path) -> None:
    raw = tiny_config().to_json_dict()
    for key in ("vision_config", "dts_config", "head_dim"):
        raw.pop(key)
    raw["mm_hidden_size"] = 1152
    (tmp_path / "config.json").write_text(json.dumps(raw))
    save_file({EMBED: torch.zeros(512, 64)}, str(tmp_path / "model.safetensors"))
    info = inspect_checkpoint(tmp_path)
    assert info.config.vision.hidden_size == 1152 and info.config.vision.num_hidden_layers == 26
    assert info.config.dts.channels == 1152 and info.config.text.head_dim == 16
    assert "model.sae.encoder.0.q.weight" in info.missing


def test_build_random_gives_the_target_dtype_and_randomised_norms() -> None:
    model = build_random(tiny_config(), device="cpu", dtype=torch.bfloat16, seed=1, tokenizer=None)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    norm = model.model.layers[0].input_layernorm.weight.float()
    assert (norm - 1).abs().max() < 0.5 and norm.std() > 0
    assert model.model.embed_tokens.weight.float().std() > 0.01


def test_bf16_random_model_runs_the_vision_and_text_paths() -> None:
    import numpy as np

    model = build_random(tiny_config(), device="cpu", dtype=torch.bfloat16, seed=2, std=0.1)
    assert model.prompt is not None  # the tiny tokenizer is attached by default
    tokens = model.encode_video(np.zeros((6, 32, 32, 3), dtype=np.uint8))
    assert tokens.dtype == torch.bfloat16 and tokens.shape == (2, 144, 64)
    ids, positions = model.prompt.build_dense([0.0, 4.0], "Is anyone there?")
    logits = model.forward_multimodal(torch.tensor([ids]), positions, tokens)
    assert logits.shape == (1, len(ids), 512) and torch.isfinite(logits.float()).all()


def test_package_exports_load_model_lazily() -> None:
    import model

    assert model.load_model is load_model
