"""The memory section reaches the store the service builds (`tiered_store`): budgets,
write-behind, which fine KV is persisted, and `gpu_gib: null` on a CPU device."""

from __future__ import annotations

from model.kv.policy import GIB
from pipeline.config import config_from_dict
from pipeline.memory.videoxl2 import CPU_POOL_GIB, gpu_pool_bytes, tiered_store


def test_the_services_store_is_write_behind_and_keeps_fine_kv_of_important_chunks(tmp_path):
    cfg = config_from_dict({"data_dir": str(tmp_path), "memory": {"host_gib": 2}})
    store = tiered_store(cfg, "cpu")
    try:
        assert store.cfg.write_behind and store.cfg.persist_fine == "important"
        assert store.cfg.host_bytes == 2 * GIB and store.cfg.gpu_bytes == CPU_POOL_GIB * GIB
        assert store.disk.root == tmp_path / "kv"
        assert "recovery_point" in store.stats()["writer"]
    finally:
        store.close()


def test_memory_settings_can_restore_the_write_through_of_every_form(tmp_path):
    cfg = config_from_dict({"data_dir": str(tmp_path), "memory": {
        "persist_fine": "all", "write_behind": False, "gpu_gib": 1.5}})
    store = tiered_store(cfg, "cpu")
    assert not store.cfg.write_behind and store.cfg.persist_fine == "all"
    assert store.cfg.gpu_bytes == int(1.5 * GIB) and "writer" not in store.stats()


def test_gpu_gib_null_means_a_share_of_the_device_and_a_fixed_pool_on_the_cpu():
    assert gpu_pool_bytes(None, "cpu") == int(CPU_POOL_GIB * GIB)
    assert gpu_pool_bytes(3.0, "cpu") == 3 * GIB
