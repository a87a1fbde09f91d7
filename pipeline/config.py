"""The XL-Watch config tree: one frozen pydantic model, loaded once, handed down by section.

Owns the schema (every section other parts read), loading from YAML, environment overrides
(`XLWATCH_DB_URL`, `XLWATCH_REDIS_URL`, `XLWATCH_DATA_DIR`, `XLWATCH_SECRET_KEY`,
`XLWATCH_API_TOKEN`; they beat the file), merging per-camera overrides over the global
camera defaults (`cfg.camera(name)`), and error messages that name the full path of the bad
key and its value. It does no I/O beyond reading the file: opening the database or creating
the data directory is the caller's job.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from model.cv.config import CVConfig
from model.cv.lines import CountLine
from model.engine.config import EngineConfig
from pipeline.record.config import RecordConfig, RecordingsConfig
from pipeline.validation import CAMERA_NAME_RE, mask_text
from storage.secrets import is_placeholder, url_password

ENV_OVERRIDES = {
    "XLWATCH_DB_URL": "db_url",
    "XLWATCH_REDIS_URL": "redis_url",
    "XLWATCH_DATA_DIR": "data_dir",
    "XLWATCH_SECRET_KEY": "secret_key",
    "XLWATCH_API_TOKEN": "api.token",
}
CONFIG_ENV = "XLWATCH_CONFIG"
_SECRET_KEYS = ("secret_key", "token", "secret", "password")
_URL_KEYS = ("db_url", "redis_url", "url")
_HHMM = r"([01]\d|2[0-3]):[0-5]\d"
_OFF_HOURS_RE = re.compile(rf"^{_HHMM}-{_HHMM}$")
_SUBPATH_RE = re.compile(r"^([A-Za-z_][\w.\[\]-]*): (.*)$", re.S)

Backend = Literal["cv", "videoxl2"]


class ConfigError(ValueError):
    """The config is invalid; `problems` lists one `path: reason; got value` per error."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        head = f"invalid config{f' {source}' if source else ''}"
        super().__init__(head + ":\n  " + "\n  ".join(problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- cameras


class _CameraFields(_Section):
    """Field definitions shared by CameraConfig (defaults) and CameraOverride (partial)."""

    fps: float = Field(1.0, gt=0, le=4)
    transport: Literal["tcp", "udp"] = "tcp"
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(10.0, gt=0)
    backoff_initial_s: float = Field(5.0, gt=0)
    backoff_max_s: float = Field(60.0, gt=0)
    max_inflight_chunks: int = Field(2, ge=1, le=64)
    loop: bool = False  # files only: start again at the end
    realtime: bool = False  # files only: frames at their native pace (a fake live camera)
    keyframes_only: Literal["auto", "on", "off"] = "auto"
    analysis_width: int = Field(640, ge=64, le=3840)
    backend: Backend | None = None  # None: the global model.backend
    timezone: str = "UTC"
    # Named polygons in normalized image coordinates (0..1), at least 3 points each.
    zones: dict[str, list[tuple[float, float]]] = Field(default_factory=dict)
    # Local-time windows ("22:00-06:00", may wrap midnight) when any person is suspicious.
    off_hours: list[str] = Field(default_factory=list)
    # Lines counting people in and out (model/cv/lines.py): name, two points in 0..1,
    # in_side (left|right walking from the first point to the second), anchor.
    count_lines: list[CountLine] = Field(default_factory=list)
    # Recording (pipeline/record/config.py): off, continuous or around events, retention
    record: RecordConfig = Field(default_factory=RecordConfig)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("zones")
    @classmethod
    def _zones(cls, v: dict[str, list[tuple[float, float]]]) -> dict:
        for name, pts in v.items():
            if len(pts) < 3:
                raise ValueError(f"zone {name!r} needs at least 3 points")
            if any(not (0 <= x <= 1 and 0 <= y <= 1) for x, y in pts):
                raise ValueError(f"zone {name!r} points must lie in 0..1")
        return v

    @field_validator("count_lines")
    @classmethod
    def _count_lines(cls, v: list[CountLine]) -> list[CountLine]:
        names = [ln.name for ln in v]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"count line name {name!r} is used twice")
        return v

    @field_validator("off_hours")
    @classmethod
    def _off_hours(cls, v: list[str]) -> list[str]:
        for w in v:
            if not _OFF_HOURS_RE.fullmatch(w):
                raise ValueError(f"off_hours window {w!r} must look like '22:00-06:00'")
        return v


class CameraConfig(_CameraFields):
    """Effective settings of one camera (global defaults merged with its override)."""

    @model_validator(mode="after")
    def _backoff(self) -> CameraConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s: must be >= backoff_initial_s ({self.backoff_initial_s:g}); "
                f"got {self.backoff_max_s:g}"
            )
        return self


class CameraOverride(_CameraFields):
    """Per-camera partial override: only the keys written in the file are applied."""


# ---------------------------------------------------------------- other sections


class ModelConfig(_Section):
    backend: Backend = "cv"
    path: Path | None = None  # local checkpoint directory; nothing is downloaded
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"

    @model_validator(mode="after")
    def _path_for_llm(self) -> ModelConfig:
        if self.backend == "videoxl2" and self.path is None:
            raise ValueError("path: required when backend is 'videoxl2' (a local directory)")
        return self


class MemoryConfig(_Section):
    # None: half the GPU memory free once the model is loaded (2 GiB on a CPU device)
    gpu_gib: float | None = Field(None, gt=0)
    host_gib: float = Field(8.0, gt=0)
    disk_gib: float = Field(100.0, gt=0)
    fine_ttl_s: float = Field(86400.0, gt=0)
    coarse_ttl_s: float = Field(2592000.0, gt=0)
    event_retention_days: int | None = Field(None, ge=1)
    # fine KV to disk: "important" chunks only (CV events, alerts, questions; the others
    # stay in the GPU and host pools for a recent window), or "all"; coarse always
    persist_fine: Literal["all", "important"] = "important"
    write_behind: bool = True  # disk writes from a background writer, off the step
    # KV on disk: FP8 (e4m3, a scale per token and head: half the bytes) or as in memory;
    # the coarse form pooled to this ratio on disk (the pools keep engine.coarse_ratio)
    disk_dtype: Literal["fp8", "model"] = "fp8"
    disk_coarse_ratio: int = Field(16, ge=1, le=144)
    # a question's top-k chunks whose fine KV is gone are prefilled again from the
    # camera's recording (where it records), at most this many per question; 0: never
    redense_max_chunks: int = Field(4, ge=0, le=64)


class AlertRuleConfig(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    kind: str = Field(min_length=1, max_length=32)
    camera: str | None = Field(None, pattern=CAMERA_NAME_RE.pattern)
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class WebhookConfig(_Section):
    url: str = Field(pattern=r"^https?://")
    secret: SecretStr | None = None
    timeout_s: float = Field(5.0, gt=0)
    kinds: list[str] | None = None  # None: every alert kind


class AlertsConfig(_Section):
    stream: str = "xlwatch:alerts"
    cooldown_s: float = Field(60.0, ge=0)
    standing_questions: list[str] = Field(
        default_factory=lambda: ["Is anyone fighting or lying on the floor? Answer yes or no."]
    )
    anomaly_threshold: float = Field(0.5, ge=0, le=1)
    rules: list[AlertRuleConfig] = Field(default_factory=list)
    webhooks: list[WebhookConfig] = Field(default_factory=list)


_TOPIC = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"  # no wildcards, no empty or `$` levels


class MqttConfig(_Section):
    """Alerts and camera state to an MQTT broker, with Home Assistant discovery
    (pipeline/alerts/mqtt.py). Off by default. Credentials and TLS come from the
    environment only (XLWATCH_MQTT_USERNAME, XLWATCH_MQTT_PASSWORD, XLWATCH_MQTT_TLS,
    XLWATCH_MQTT_TLS_CA, XLWATCH_MQTT_TLS_CERT, XLWATCH_MQTT_TLS_KEY), never this file."""

    enabled: bool = False
    host: str = Field("127.0.0.1", pattern=r"^[A-Za-z0-9_.:-]{1,253}$")
    port: int = Field(1883, ge=1, le=65535)
    client_id: str = Field("xlwatch", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    topic_prefix: str = Field("xlwatch", max_length=128, pattern=_TOPIC)
    discovery: bool = True  # Home Assistant discovery configs (retained)
    discovery_prefix: str = Field("homeassistant", max_length=128, pattern=_TOPIC)
    # of alerts and state; at 0 the broker acknowledges nothing, so a message on the wire
    # when the broker goes down is lost; 1 (at least once) is what the outbox relies on
    qos: int = Field(1, ge=0, le=2)
    retain_state: bool = True  # state topics keep their last value for new subscribers
    snapshots: bool = True  # the alert's JPEG on <prefix>/<camera>/snapshot (retained)
    keepalive_s: int = Field(60, ge=5, le=3600)
    publish_timeout_s: float = Field(5.0, gt=0, le=120)
    status_poll_s: float = Field(5.0, gt=0, le=3600)  # camera status from the database

    @model_validator(mode="before")
    @classmethod
    def _no_credentials_here(cls, data: Any) -> Any:
        for key, var in (("username", "XLWATCH_MQTT_USERNAME"),
                         ("password", "XLWATCH_MQTT_PASSWORD"), ("tls", "XLWATCH_MQTT_TLS"),
                         ("ca_file", "XLWATCH_MQTT_TLS_CA")):
            if isinstance(data, Mapping) and key in data:
                raise ValueError(f"{key}: not read from the config file; set {var} in the "
                                 "environment")
        return data


class ApiConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    token: SecretStr | None = None

    @model_validator(mode="after")
    def _token_off_loopback(self) -> ApiConfig:
        if not _is_loopback(self.host) and self.token is None:
            raise ValueError(
                f"token: required when host is not loopback (host {self.host!r}); set "
                "api.token or XLWATCH_API_TOKEN"
            )
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ActorResources(_Section):
    """What one actor asks Ray for: logical CPUs (fractions allowed) and memory (MiB, Ray's
    `memory` resource: scheduling and autoscaling only, not a hard limit)."""

    num_cpus: float = Field(ge=0, le=256)
    memory_mb: int = Field(ge=0, le=4_194_304)


class RayConfig(_Section):
    address: str | None = None  # None: start a local Ray bound to loopback
    num_cpus: int | None = Field(None, ge=1)
    # the Ray namespace of the service's named actors (several services may share a Ray)
    namespace: str = Field("xlwatch", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    # How many 1 fps cameras one memory actor holds (one GPU, or a node's CPU worker);
    # cameras beyond it wait, shown as "unplaced" (bench/service.py: one H200 holds ...)
    cameras_per_device: float = Field(256.0, gt=0, le=100_000)
    # Actor names in the namespace: xlwatch-<service_id>.<...>. None: derived from the
    # database, so a driver restarted on the same database adopts its actors.
    service_id: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    # A clean stop (SIGTERM/SIGINT) of a driver joined to a cluster (ray.address): "stop"
    # its actors, or "keep" them running for the next driver to adopt (the KubeRay
    # Deployment). A private local Ray always ends with the process.
    on_exit: Literal["stop", "keep"] = "stop"
    # Resource requests. Ingest: decode + CV at 1 fps, 11.5 cameras per core measured
    # (docs/BENCHMARKS.md, NanoDet); the memory actor also asks for one GPU on a GPU slot.
    ingest: ActorResources = Field(
        default_factory=lambda: ActorResources(num_cpus=0.1, memory_mb=384))
    query: ActorResources = Field(
        default_factory=lambda: ActorResources(num_cpus=0.1, memory_mb=512))
    alerts: ActorResources = Field(
        default_factory=lambda: ActorResources(num_cpus=0.1, memory_mb=256))
    memory: ActorResources = Field(
        default_factory=lambda: ActorResources(num_cpus=0.1, memory_mb=512))


# ---------------------------------------------------------------- the tree


class XLWatchConfig(_Section):
    data_dir: Path = Field(Path("./xlwatch-data"), validate_default=True)
    db_url: str | None = None  # None: SQLite at data_dir/xlwatch.db
    redis_url: str | None = None  # None: alerts reach the DB, CLI and API only
    secret_key: SecretStr | None = None  # None: a key file in data_dir
    allowed_roots: list[Path] = Field(default_factory=list)  # default [cwd, data_dir]
    camera_defaults: CameraConfig = Field(default_factory=CameraConfig)
    cameras: dict[str, CameraOverride] = Field(default_factory=dict)
    model: ModelConfig = Field(default_factory=ModelConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    cv: CVConfig = Field(default_factory=CVConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    recordings: RecordingsConfig = Field(default_factory=RecordingsConfig)

    @model_validator(mode="before")
    @classmethod
    def _default_roots(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("allowed_roots"):
            data = {**data, "allowed_roots": [Path.cwd(), data.get("data_dir", "./xlwatch-data")]}
        return data

    @field_validator("data_dir")
    @classmethod
    def _abs_dir(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @field_validator("allowed_roots")
    @classmethod
    def _abs_roots(cls, v: list[Path]) -> list[Path]:
        return [p.expanduser().resolve() for p in v]

    @field_validator("cameras")
    @classmethod
    def _camera_names(cls, v: dict[str, CameraOverride]) -> dict[str, CameraOverride]:
        for name in v:
            if not CAMERA_NAME_RE.fullmatch(name):
                raise ValueError(f"camera name {name!r} must match {CAMERA_NAME_RE.pattern}")
        return v

    @field_validator("db_url", "redis_url")
    @classmethod
    def _scheme(cls, v: str | None, info) -> str | None:  # noqa: ANN001
        if v is None:
            return v
        allowed = ("sqlite", "postgresql") if info.field_name == "db_url" else ("redis", "rediss")
        scheme = v.split(":", 1)[0].split("+", 1)[0].lower()
        if scheme not in allowed:
            raise ValueError(f"scheme must be one of {', '.join(allowed)}")
        return v

    @model_validator(mode="after")
    def _merged_cameras_valid(self) -> XLWatchConfig:
        for name in self.cameras:
            self.camera(name)  # raises on an override that breaks a cross-field rule
        return self

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> XLWatchConfig:
        """A secret still at an example file's value (REPLACE, change-me, ...) is refused,
        naming the setting and never echoing the value."""
        env = {v: k for k, v in ENV_OVERRIDES.items()}
        found = [("secret_key", "", self.secret),
                 ("api.token", "", self.api.token and self.api.token.get_secret_value())]
        found += [(key, "the password in ", url_password(url))
                  for key, url in (("db_url", self.db_url), ("redis_url", self.redis_url))
                  if url]
        found += [(f"alerts.webhooks.{i}.secret", "", w.secret.get_secret_value())
                  for i, w in enumerate(self.alerts.webhooks) if w.secret]
        for key, what, value in found:
            if value is not None and is_placeholder(value):
                var = f" ({env[key]})" if key in env else ""
                raise ValueError(
                    f"{key}: {what}the value is still a placeholder from an example file "
                    f"(like REPLACE or change-me); set the real secret{var}; the value is "
                    "not shown")
        return self

    @model_validator(mode="after")
    def _disk_ratio_valid(self) -> XLWatchConfig:
        r, d = self.engine.coarse_ratio, self.memory.disk_coarse_ratio
        if d % r:
            raise ValueError(f"memory.disk_coarse_ratio: must be a multiple of "
                             f"engine.coarse_ratio ({r}); got {d}")
        return self

    @model_validator(mode="after")
    def _rules_valid(self) -> XLWatchConfig:
        """Every alert rule parses, and a zone it names exists where it applies: the
        service refuses to start on a rule that could never fire."""
        from pipeline.alerts.evaluator import load_rules
        from pipeline.alerts.spec import RuleError

        try:
            rules, _ = load_rules(self.alerts)
        except RuleError as exc:
            raise ValueError(str(exc)) from None
        for i, rule in enumerate(rules):
            zone = rule.params.get("zone")
            if not isinstance(zone, str):
                continue
            names = [rule.camera] if rule.camera else [None, *self.cameras]
            zones = {z for n in names
                     for z in (self.camera(n) if n else self.camera_defaults).zones}
            if zone not in zones:
                where = f"camera {rule.camera!r}" if rule.camera else "any camera"
                raise ValueError(f"alerts.rules[{i}].params.zone: no zone of that name on "
                                 f"{where} (camera_defaults.zones, cameras.<name>.zones); "
                                 f"got {zone!r}")
        return self

    # -- derived values

    @property
    def database_url(self) -> str:
        # Same form as storage.db.sqlite_url; not imported so that reading the config does
        # not pull SQLAlchemy and Alembic into every process.
        return self.db_url or f"sqlite:///{self.data_dir / 'xlwatch.db'}"

    @property
    def secret(self) -> str | None:
        return self.secret_key.get_secret_value() if self.secret_key else None

    def camera(self, name: str) -> CameraConfig:
        """The effective settings of camera `name`: its override merged over the defaults."""
        override = self.cameras.get(name)
        if override is None:
            return self.camera_defaults
        defaults, own = self.camera_defaults.model_dump(), override.model_dump(exclude_unset=True)
        merged = {**defaults, **own}
        if "record" in own:  # key by key: `record: {mode: events}` keeps the default max_gb
            merged["record"] = {**defaults["record"], **own["record"]}
        try:
            return CameraConfig.model_validate(merged)
        except ValidationError as exc:
            raise ValueError(f"cameras.{name}.{_problems(exc)[0]}") from None

    def backend_for(self, name: str) -> Backend:
        return self.camera(name).backend or self.model.backend

    def masked_dict(self) -> dict[str, Any]:
        """JSON-able resolved config with secrets as '***' and URL credentials masked."""
        data = self.model_dump(mode="json")
        data["db_url"] = self.database_url
        return _mask_tree(data)


def _mask_tree(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _mask_tree(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask_tree(v, key) for v in node]
    if isinstance(node, str):
        if any(s in key for s in _SECRET_KEYS):
            return "***"
        if any(s in key for s in _URL_KEYS):
            return mask_text(node)
    return node


# ---------------------------------------------------------------- loading


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-"))


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        path = _loc(err["loc"])
        msg = mask_text(err["msg"].removeprefix("Value error, "))  # values quoted in it too
        # Cross-field validators name their field as "sub.path: reason"; join the paths.
        sub = _SUBPATH_RE.match(msg)
        if sub:
            path = f"{path}.{sub[1]}" if path else sub[1]
            msg = sub[2]
        if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            msg = "unknown key"
        value = err.get("input")
        leaf = str(err["loc"][-1]) if err["loc"] else ""
        if any(s in leaf for s in _SECRET_KEYS) and value is not None:
            value = "***"
        elif isinstance(value, str):
            value = mask_text(value)
        shown = "" if isinstance(value, dict | list) or value is None or "; got " in msg \
            else f"; got {value!r}"
        out.append(f"{path or '(top level)'}: {msg}{shown}")
    return out


def _set_dotted(data: dict[str, Any], dotted: str, value: str) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for p in parents:
        child = node.get(p)
        node[p] = child = dict(child) if isinstance(child, Mapping) else {}
        node = child
    node[leaf] = value


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([f"file: cannot read ({exc.strerror}); got {str(path)!r}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"file: not valid YAML ({mask_text(str(exc))})"], str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): must be a mapping; got {type(data).__name__}"],
                          str(path))
    return data


def load_config(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> XLWatchConfig:
    """Load the config: YAML file (or `$XLWATCH_CONFIG`, or built-in defaults), then
    environment overrides. Raises ConfigError naming every bad key with its path."""
    env = os.environ if env is None else env
    path = path or env.get(CONFIG_ENV) or None
    data = read_yaml(Path(path)) if path else {}
    for var, dotted in ENV_OVERRIDES.items():
        if env.get(var):
            _set_dotted(data, dotted, env[var])
    return config_from_dict(data, source=str(path) if path else None)


def config_from_dict(data: Mapping[str, Any], source: str | None = None) -> XLWatchConfig:
    try:
        return XLWatchConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_problems(exc), source) from None
