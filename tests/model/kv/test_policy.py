"""Pure tier rules: config validation, protection window, retention, disk victim order."""

from __future__ import annotations

import pytest

from model.kv.policy import (
    COARSE,
    FINE,
    GIB,
    TierConfig,
    chunk_tokens,
    disk_victim_rank,
    expired,
    is_protected,
    kv_bytes,
)


def test_gpu_budget_below_prefill_window_is_refused_with_the_numbers():
    cfg = TierConfig.from_gib(gpu_gib=0.1, host_gib=1, disk_gib=10, prefill_chunks=3)
    with pytest.raises(ValueError) as err:
        cfg.validate_against(prev_chunks=3, chunk_bytes=34 << 20, cameras=2)
    msg = str(err.value)
    assert "2 camera(s) x (3 + 1) chunks x 35651584 B = 285212672 B" in msg
    assert f"({cfg.gpu_bytes} B = 0.100 GiB)" in msg


def test_gpu_budget_holding_the_prefill_window_is_accepted():
    cfg = TierConfig(gpu_bytes=4 * 100, prefill_chunks=3)
    cfg.validate_against(prev_chunks=3, chunk_bytes=100)
    with pytest.raises(ValueError, match="prev_chunks \\(2\\)"):
        cfg.validate_against(prev_chunks=2, chunk_bytes=100)


@pytest.mark.parametrize("field,value", [
    ("gpu_bytes", -1), ("disk_bytes", 1.5), ("fine_ttl_s", 0), ("coarse_ttl_s", float("inf")),
    ("prefill_chunks", -2),
])
def test_bad_config_values_are_refused_naming_field_and_value(field, value):
    with pytest.raises(ValueError, match=f"TierConfig.{field} .*{value!r}"):
        TierConfig(**{field: value})


def test_coarse_ttl_shorter_than_fine_ttl_is_refused():
    with pytest.raises(ValueError, match="coarse_ttl_s \\(10\\) must be >= fine_ttl_s \\(20\\)"):
        TierConfig(fine_ttl_s=20, coarse_ttl_s=10)


@pytest.mark.parametrize("form,seq,pinned,want", [
    (FINE, 9, False, True),     # newest: in the prefill window
    (FINE, 7, False, True),     # third newest: still in a 3-chunk window
    (FINE, 6, False, False),    # fourth newest: out
    (FINE, 0, True, True),      # pinned: always
    (COARSE, 4, False, True),   # inside the 5-chunk coarse window
    (COARSE, 4, False, True),
    (COARSE, 3, False, False),
])
def test_protection_window(form, seq, pinned, want):
    cfg = TierConfig(prefill_chunks=3, gpu_coarse_chunks=6)
    assert is_protected(form, seq, list(range(10)), cfg, pinned) is want


@pytest.mark.parametrize("form,age,important,want", [
    (FINE, 99, False, False), (FINE, 100, False, True), (FINE, 500, True, False),
    (FINE, 1000, True, True), (COARSE, 500, False, False), (COARSE, 1000, False, True),
])
def test_retention_deadlines(form, age, important, want):
    cfg = TierConfig(fine_ttl_s=100, coarse_ttl_s=1000)
    assert expired(form, created=50.0, now=50.0 + age, important=important, cfg=cfg) is want


def test_disk_gives_up_plain_fine_then_important_fine_then_coarse_oldest_first():
    items = [(COARSE, False, 1.0), (FINE, True, 2.0), (FINE, False, 5.0), (FINE, False, 3.0)]
    ranked = sorted(items, key=lambda i: disk_victim_rank(*i))
    assert ranked == [(FINE, False, 3.0), (FINE, False, 5.0), (FINE, True, 2.0),
                      (COARSE, False, 1.0)]


def test_real_model_chunk_bytes_match_design_figures():
    per_token = kv_bytes(layers=28, kv_heads=4, head_dim=128, tokens=1, dtype_bytes=2)
    assert per_token == 56 * 1024  # DESIGN.md: 56 KiB per token in bf16
    fine = kv_bytes(28, 4, 128, chunk_tokens(4, 8, 144), 2)
    assert fine / (1 << 20) == pytest.approx(34, rel=0.03)  # about 34 MiB per chunk
    assert kv_bytes(28, 4, 128, chunk_tokens(900, 8, 144, ratio=16), 2) / GIB < 1.0
