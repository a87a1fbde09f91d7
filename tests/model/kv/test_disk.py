"""DiskKVStore on a real temporary folder: atomic files, checksums, accounting, sweep."""

from __future__ import annotations

import pytest
import torch

from model.kv.disk import CorruptChunkFile, DiskKVStore, tensor_bytes


def make_kv(seed=0, tokens=24, dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(seed)
    k = torch.randn(2, 2, tokens, 16, generator=g).to(dtype)
    v = torch.randn(2, 2, tokens, 16, generator=g).to(dtype)
    return {"k": k, "v": v}


def test_write_then_read_returns_identical_tensors_and_meta(tmp_path):
    store = DiskKVStore(tmp_path)
    kv = make_kv()
    cf = store.write("cam-a", 7, "fine", kv, {"group_times": "[0.0, 4.0]"})
    tensors, meta = store.read("cam-a", 7, "fine")
    assert meta == {"group_times": "[0.0, 4.0]"}
    for name in kv:
        assert tensors[name].dtype == kv[name].dtype
        assert torch.equal(tensors[name], kv[name])
    assert cf.nbytes == tensor_bytes(kv)
    assert [c.nbytes for c in store.scan()] == [tensor_bytes(kv)]
    assert store.bytes_used("cam-a") == cf.file_bytes == cf.path.stat().st_size


def test_rewrite_replaces_file_and_leaves_no_temporary_files(tmp_path):
    store = DiskKVStore(tmp_path)
    store.write("cam-a", 1, "coarse", make_kv(0), {})
    store.write("cam-a", 1, "coarse", make_kv(1), {})
    assert torch.equal(store.read("cam-a", 1, "coarse")[0]["k"], make_kv(1)["k"])
    assert sorted(p.name for p in (tmp_path / "cam-a").iterdir()) == [
        "000000000001.coarse.safetensors"]


@pytest.mark.parametrize("damage", ["truncate", "flip_data_byte", "garbage_header"])
def test_corrupt_or_truncated_file_raises_clear_error_naming_the_file(tmp_path, damage):
    store = DiskKVStore(tmp_path)
    cf = store.write("cam-a", 3, "fine", make_kv(), {})
    store.write("cam-a", 4, "fine", make_kv(1), {})
    raw = bytearray(cf.path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip_data_byte":
        raw[-5] ^= 0xFF
    else:
        raw[8:20] = b"not json!!!!"
    cf.path.write_bytes(bytes(raw))
    with pytest.raises(CorruptChunkFile, match="000000000003.fine.safetensors") as err:
        store.read("cam-a", 3, "fine")
    assert err.value.path == cf.path
    # the neighbour is untouched and still reads
    assert torch.equal(store.read("cam-a", 4, "fine")[0]["v"], make_kv(1)["v"])


def test_sweep_removes_expired_files_and_is_idempotent(tmp_path):
    store = DiskKVStore(tmp_path)
    for seq in range(4):
        for form in ("fine", "coarse"):
            store.write("cam-a", seq, form, make_kv(seq, tokens=4), {})

    def expired(cf):
        return cf.form == "fine" and cf.seq < 2

    removed = store.sweep(expired)
    assert sorted((c.seq, c.form) for c in removed) == [(0, "fine"), (1, "fine")]
    assert store.sweep(expired) == []
    assert sorted((c.seq, c.form) for c in store.scan()) == sorted(
        [(s, "coarse") for s in range(4)] + [(2, "fine"), (3, "fine")])


def test_scan_cleanup_removes_leftover_temporary_files(tmp_path):
    store = DiskKVStore(tmp_path)
    store.write("cam-a", 0, "fine", make_kv(), {})
    leftover = tmp_path / "cam-a" / ".000000000001.fine.safetensors.1.2.tmp"
    leftover.write_bytes(b"partial")
    assert [c.seq for c in store.scan()] == [0] and leftover.exists()
    assert [c.seq for c in store.scan(cleanup=True)] == [0]
    assert not leftover.exists()


def test_bad_camera_name_form_or_reserved_meta_key_is_refused(tmp_path):
    store = DiskKVStore(tmp_path)
    with pytest.raises(ValueError, match=r"camera name '\.\./x'"):
        store.write("../x", 0, "fine", make_kv(), {})
    with pytest.raises(ValueError, match="'medium'"):
        store.write("cam-a", 0, "medium", make_kv(), {})
    with pytest.raises(ValueError, match="xlwatch.crc32"):
        store.write("cam-a", 0, "fine", make_kv(), {"xlwatch.crc32": "0"})


def test_importance_marks_survive_a_new_store_on_the_same_folder(tmp_path):
    DiskKVStore(tmp_path).mark_important("cam-a", {3, 5})
    DiskKVStore(tmp_path).mark_important("cam-a", {4})
    assert DiskKVStore(tmp_path).important("cam-a") == {3, 4, 5}
    assert DiskKVStore(tmp_path).important("cam-b") == set()
