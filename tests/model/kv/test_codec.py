"""Disk forms of KV: FP8 and the coarse form pooled further on disk, through the real
`TieredChunkStore` and `DiskKVStore` on a temporary folder (CPU tensors stand in for the
GPU pool; the layout is the engine's own `coarsen`)."""

from __future__ import annotations

import pytest
import torch

from model.engine.context import coarsen
from model.engine.disk_forms import CoarseRepool
from model.engine.records import ChunkMeta
from model.kv.codec import Chain, Fp8Codec
from model.kv.disk import DiskKVStore, tensor_bytes
from model.kv.index import Tier
from model.kv.policy import TierConfig
from model.kv.tiered import TieredChunkStore

L, H, D, SLOTS = 2, 2, 128, 144  # head dim as the real model
META = ChunkMeta("cam", 0, (0.0, 4.0), (5, 6), SLOTS, wall_origin=1e9, offset=0)


def fine_kv(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n = META.n_tokens
    return {"k": torch.randn(L, H, n, D, generator=g).to(torch.bfloat16),
            "v": torch.randn(L, H, n, D, generator=g).to(torch.bfloat16)}


def codec(disk_ratio: int = 16, fp8: bool = True) -> Chain:
    return Chain(CoarseRepool(4, disk_ratio), Fp8Codec(enabled=fp8))


def meta_s() -> dict[str, str]:
    return {**META.to_meta(), "coarse_ratio": "4"}


def test_repool_decodes_to_the_r16_coarse_form_repeated_in_the_r4_layout():
    fine = fine_kv()
    c4, c16 = coarsen(META, fine, 4), coarsen(META, fine, 16)
    repool = CoarseRepool(4, 16)
    disk, extra = repool.encode("coarse", c4, meta_s())
    assert disk["k"].shape[2] == META.n_coarse_tokens(16)
    back = repool.decode("coarse", disk, {**meta_s(), **extra})
    assert back["k"].shape == c4["k"].shape
    # The r16 pooling of the fine KV, each pooled slot repeated over its 4 r4 slots.
    expect = []
    pos16 = 0
    for h in META.header_lens:
        expect.append(c16["k"][:, :, pos16:pos16 + h])
        expect.append(c16["k"][:, :, pos16 + h:pos16 + h + SLOTS // 16].repeat_interleave(4, 2))
        pos16 += h + SLOTS // 16
    torch.testing.assert_close(back["k"].float(), torch.cat(expect, 2).float(),
                               atol=2e-2, rtol=2e-2)
    assert torch.equal(back["summary"], c4["summary"])
    # Fine KV passes through untouched.
    same, none = repool.encode("fine", fine, meta_s())
    assert same is fine and none == {}


def test_fp8_round_trip_is_close_and_half_the_bytes():
    fine = fine_kv(1)
    disk, _ = Fp8Codec().encode("fine", fine, {})
    assert disk["k"].dtype == torch.float8_e4m3fn
    assert tensor_bytes(disk) < 0.55 * tensor_bytes(fine)
    back = Fp8Codec().decode("fine", disk, {})
    assert back["k"].dtype == torch.bfloat16 and back["k"].shape == fine["k"].shape
    err = (back["k"].float() - fine["k"].float()).abs().amax(-1)
    amax = fine["k"].float().abs().amax(-1)
    assert (err <= amax / 8 + 1e-6).all()  # e4m3 keeps 3 mantissa bits per value
    rel = (back["v"].float() - fine["v"].float()).norm() / fine["v"].float().norm()
    assert rel < 0.05


def test_ratio_not_a_multiple_of_the_memory_ratio_is_refused():
    with pytest.raises(ValueError, match="disk_coarse_ratio"):
        CoarseRepool(4, 6)


def _store(path, c=None, gpu=1 << 30):
    cfg = TierConfig(gpu_bytes=gpu, host_bytes=0, disk_bytes=1 << 30, prefill_chunks=0,
                     gpu_coarse_chunks=0)
    return TieredChunkStore(cfg, DiskKVStore(path), codec=c)


def test_store_writes_the_disk_form_and_reads_back_the_memory_form(tmp_path):
    store = _store(tmp_path, codec())
    fine = fine_kv()
    coarse = coarsen(META, fine, 4)
    store.put(("cam", 0), "fine", fine, meta_s())
    store.put(("cam", 0), "coarse", coarse, meta_s())
    files = {cf.form: cf for cf in store.disk.scan()}
    assert files["coarse"].nbytes < 0.5 * tensor_bytes(coarse)  # r16 and FP8 on disk
    assert files["fine"].nbytes < 0.55 * tensor_bytes(fine)
    # Off the GPU (budget 0), reads come from the disk, decoded to the memory layout.
    store.set_budgets(gpu=0)
    assert store.where(("cam", 0), "coarse") == Tier.DISK
    got = store.get(("cam", 0), "coarse")
    assert got["k"].shape == coarse["k"].shape and got["k"].dtype == coarse["k"].dtype
    store.check_integrity()

    # A restart accounts each chunk at its memory size (what a load puts in a pool).
    again = _store(tmp_path, codec())
    assert again.index.entry(("cam", 0), "coarse").nbytes == tensor_bytes(coarse)
    assert again.index.entry(("cam", 0), "fine").nbytes == tensor_bytes(fine)
    torch.testing.assert_close(again.get(("cam", 0), "fine")["v"].float(),
                               fine["v"].float(), atol=0.3, rtol=0.1)
    assert "disk_codec" not in again.meta(("cam", 0))  # the file's, not the chunk's


def test_files_written_without_a_codec_still_read_back(tmp_path):
    plain = _store(tmp_path, None, gpu=0)
    fine = fine_kv(2)
    plain.put(("cam", 0), "fine", fine, meta_s())
    plain.flush()
    later = _store(tmp_path, codec(), gpu=0)
    assert torch.equal(later.get(("cam", 0), "fine")["k"], fine["k"])


def test_write_behind_reads_a_queued_disk_form_back_in_memory_form(tmp_path):
    cfg = TierConfig(gpu_bytes=0, host_bytes=0, disk_bytes=1 << 30, prefill_chunks=0,
                     gpu_coarse_chunks=0, write_behind=True)
    store = TieredChunkStore(cfg, DiskKVStore(tmp_path), codec=codec())
    coarse = coarsen(META, fine_kv(3), 4)
    store.put(("cam", 0), "coarse", coarse, meta_s())
    got = store.get(("cam", 0), "coarse")  # from the writer's queue or the file
    assert got["k"].shape == coarse["k"].shape
    assert store.flush(30)
    store.close(30)
