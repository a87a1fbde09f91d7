"""The KV index's planning cost per chunk at the service's scale (CPU, no tensors).

What `TieredChunkStore.put` and `get` ask of `KVIndex` for every chunk, with the tiers
full: N cameras each add a chunk's fine and coarse forms in turn (real byte sizes: fine
33.25 MiB, coarse 9.6 MiB at r = 4), every 10th chunk is marked important, and a
question reads one camera's last `--reads` coarse chunks (promoting them to the GPU where
room can be made). Budgets are the H200 service's: the GPU pool about 60 GiB, the host
pool 8 GiB, the disk 100 GiB; plans are committed as the store would after carrying them
out. Reports milliseconds per chunk put and per read once the tiers are full, and the
entries the index holds. The service's step puts 16 chunks; at 256 cameras at 1 fps it
must put 16 chunks a second in all.

    PYTHONPATH=. python bench/kv_index.py [--cameras 256] [--chunks-per-camera 40]
        [--reads 113] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.kv.index import KVIndex  # noqa: E402
from model.kv.policy import GIB, TierConfig  # noqa: E402
from model.kv.records import Tier  # noqa: E402

MIB = 1 << 20
FINE_B, COARSE_B = int(33.25 * MIB), int(9.6 * MIB)


def run(cameras: int, per_camera: int, reads: int, gpu_gib: float, host_gib: float) -> dict:
    cfg = TierConfig.from_gib(gpu_gib, host_gib, 100.0, prefill_chunks=3,
                              gpu_coarse_chunks=225, persist_fine="important",
                              write_behind=True)
    index = KVIndex(cfg)
    put_ms: list[float] = []
    now = 0.0
    for seq in range(per_camera):
        for c in range(cameras):
            key, now = (f"cam{c:03d}", seq), now + 1.0 / cameras
            started = time.perf_counter()
            for form, nbytes in (("fine", FINE_B), ("coarse", COARSE_B)):
                index.commit(index.plan_add(key, form, nbytes, created=now))
            if seq % 10 == 0:
                index.commit(index.plan_important(key))
            put_ms.append((time.perf_counter() - started) * 1000)
    full_from = len(put_ms) // 2  # the second half: every tier full by then
    started = time.perf_counter()
    camera = "cam000"
    seqs = index.seqs(camera)[-reads:]
    for seq in seqs:
        index.touch((camera, seq))
        index.commit(index.plan_load((camera, seq), "coarse"))
    read_ms = (time.perf_counter() - started) * 1000 / max(1, len(seqs))
    steady = sorted(put_ms[full_from:])
    return {"cameras": cameras, "chunks": len(put_ms),
            "entries": sum(len(index.record(k).forms) for k in index.chunk_keys()),
            "put_ms_p50": round(steady[len(steady) // 2], 3),
            "put_ms_mean": round(sum(steady) / len(steady), 3),
            "read_ms_mean": round(read_ms, 3),
            "gpu_used_gib": round(index.used(Tier.GPU) / GIB, 2),
            "host_used_gib": round(index.used(Tier.HOST) / GIB, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=256)
    ap.add_argument("--chunks-per-camera", type=int, default=40)
    ap.add_argument("--reads", type=int, default=113)
    ap.add_argument("--gpu-gib", type=float, default=60.0)
    ap.add_argument("--host-gib", type=float, default=8.0)
    ap.add_argument("--quick", action="store_true", help="8 cameras, 12 chunks each")
    args = ap.parse_args()
    cams, per = (8, 12) if args.quick else (args.cameras, args.chunks_per_camera)
    gpu, host = (2.0, 1.0) if args.quick else (args.gpu_gib, args.host_gib)
    started = time.perf_counter()
    out = run(cams, per, args.reads, gpu, host)
    print(json.dumps({"bench": "kv_index", **out, "gpu_gib": gpu, "host_gib": host,
                      "date": datetime.now(UTC).strftime("%Y-%m-%d"),
                      "host": f"{platform.machine()} {platform.system()}, "
                              f"Python {platform.python_version()}",
                      "seconds": round(time.perf_counter() - started, 1)}))
    print("command: PYTHONPATH=. python bench/kv_index.py " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
