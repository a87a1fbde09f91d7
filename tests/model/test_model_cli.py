"""`xlwatch model make-tiny` and `xlwatch model info` through the real CLI app."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from typer.testing import CliRunner

from model.checkpoint import expected_shapes
from model.sizes import count_by_part, real_config
from pipeline.app.cli import app

runner = CliRunner()


def _write_header_only_safetensors(file: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """A safetensors file with a complete header but no tensor bytes: `info` must never
    need them (a real checkpoint is 16 GB)."""
    header, offset = {}, 0
    for key, shape in shapes.items():
        n = 2
        for d in shape:
            n *= d
        header[key] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    file.write_bytes(struct.pack("<Q", len(blob)) + blob)


def test_make_tiny_then_info_reports_parts_and_no_key_problems(tmp_path: Path) -> None:
    target = tmp_path / "tiny"
    made = runner.invoke(app, ["model", "make-tiny", str(target), "--seed", "2"])
    assert made.exit_code == 0, made.output
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in target.iterdir()
    }
    result = runner.invoke(app, ["model", "info", str(target), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    from model.checkpoint import load_model

    model = load_model(target)
    want = count_by_part((k, tuple(v.shape)) for k, v in model.state_dict().items())
    assert report["parameters"] == want
    assert report["missing"] == [] and report["unexpected"] == [] and report["ok"] is True
    assert report["dtypes"] == ["F32"]


def test_make_tiny_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    result = runner.invoke(app, ["model", "make-tiny", str(tmp_path)])
    assert result.exit_code != 0
    assert "DIR=" in result.output and str(tmp_path) in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_info_reads_real_size_headers_without_tensor_data(tmp_path: Path) -> None:
    cfg = real_config()
    shapes = expected_shapes(cfg)
    shapes.pop("model.layers.27.mlp.down_proj.weight")
    shapes["model.layers.0.self_attn.q_proj.weight"] = (3584, 1000)
    raw = cfg.to_json_dict()
    for key in ("vision_config", "dts_config"):
        raw.pop(key)  # as released: the vision tower is referenced by name only
    (tmp_path / "config.json").write_text(json.dumps(raw))
    _write_header_only_safetensors(tmp_path / "model.safetensors", shapes)
    result = runner.invoke(app, ["model", "info", str(tmp_path), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["missing"] == ["model.layers.27.mlp.down_proj.weight"]
    assert report["wrong_shapes"] == [
        {
            "key": "model.layers.0.self_attn.q_proj.weight",
            "checkpoint": [3584, 1000],
            "model": [3584, 3584],
        }
    ]
    assert 8.0e9 < report["total_parameters"] < 8.2e9
    assert report["kv_bytes_per_token_bf16"] == 56 * 1024


def test_info_on_missing_directory_names_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["model", "info", str(tmp_path / "absent")])
    assert result.exit_code == 2
    assert "absent" in result.output and "does not exist" in result.output


def test_a_whole_27_layer_siglip_is_accepted_and_its_last_layer_ignored(tmp_path: Path) -> None:
    """If a checkpoint kept so400m's 27th layer, the released code would drop it: so do we."""
    from model.checkpoint import inspect_checkpoint

    cfg = real_config()
    shapes = expected_shapes(cfg)
    prefix = "model.vision_tower.vision_tower.vision_model.encoder.layers."
    for key in [k for k in shapes if k.startswith(prefix + "25.")]:
        shapes[key.replace(prefix + "25.", prefix + "26.")] = shapes[key]
    raw = cfg.to_json_dict()
    for key in ("vision_config", "dts_config"):
        raw.pop(key)
    (tmp_path / "config.json").write_text(json.dumps(raw))
    _write_header_only_safetensors(tmp_path / "model.safetensors", shapes)
    info = inspect_checkpoint(tmp_path)
    assert info.config.vision.num_hidden_layers == 26
    assert info.missing == [] and info.unexpected == [] and info.wrong_shapes == []
