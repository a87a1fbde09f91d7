"""Package `__init__` files import nothing heavy: the parts that read the config, open the
database or answer from events load neither PyAV, Ray, torch nor SQL they do not use.
Each check runs in a fresh interpreter so earlier imports cannot hide one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("code", "absent"), [
    ("import pipeline.config as c; c.config_from_dict({})",
     {"av", "ray", "torch", "sqlalchemy", "cv2"}),
    ("import pipeline.wiring, pipeline.ingest.options", {"av", "ray", "torch"}),
    ("import pipeline.alerts.core, pipeline.query.core", {"av", "ray", "torch"}),
    ("import pipeline.messages, pipeline.memory.loop", {"av", "ray", "sqlalchemy"}),
])
def test_importing_a_domain_part_loads_no_heavy_dependency(code, absent):
    probe = f"import sys; {code}; print(sorted(m for m in {sorted(absent)!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
