"""Property-based fuzzing of the config loader (hypothesis): any mapping of known and
unknown keys with odd values is either a valid config or a ConfigError whose lines each
name a path, and no error ever shows the password of a database or Redis URL."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import ConfigError, config_from_dict

# CI explores a fixed set of inputs (a random find must not block a landing);
# XLWATCH_FUZZ_RANDOM=1 explores new ones each run.
FIXED = os.environ.get("XLWATCH_FUZZ_RANDOM") != "1"

SECRET = "hunter2-s3cret"
values = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10_000), st.floats(allow_nan=True),
    st.text(max_size=20), st.lists(st.integers(), max_size=3),
    st.just(f"postgresql+psycopg://u:{SECRET}@h/db"), st.just(f"redis://:{SECRET}@h:6379/0"),
)
sections = {
    "camera_defaults": ["fps", "transport", "timezone", "zones", "off_hours", "loop", "bogus"],
    "engine": ["top_k", "vision_ahead", "camera_window", "positions", "nope"],
    "memory": ["gpu_gib", "host_gib", "persist_fine", "write_behind", "nope"],
    "cv": ["loiter_s", "crowd_min_people", "nope"],
    "alerts": ["cooldown_s", "anomaly_threshold", "rules", "nope"],
    "api": ["host", "port", "token"],
}
section = st.sampled_from(sorted(sections)).flatmap(
    lambda name: st.tuples(st.just(name), st.dictionaries(
        st.sampled_from(sections[name]), values, max_size=3)))
top = st.dictionaries(st.sampled_from(["db_url", "redis_url", "data_dir", "zzz"]), values,
                      max_size=2)


@settings(max_examples=400, deadline=None, database=None, derandomize=FIXED)
@given(st.lists(section, max_size=3), top)
def test_any_config_loads_or_is_refused_naming_paths_without_secrets(parts, extra):
    data = {**{k: v for k, v in extra.items() if k != "data_dir"}, **dict(parts)}
    try:
        config_from_dict(data)
    except ConfigError as exc:
        assert exc.problems and all(":" in p for p in exc.problems)
        assert SECRET not in str(exc)
