"""Regenerate the vendored schemas in this folder (run by hand, never by the tests).

  python tests/deploy/schemas/vendor.py KUBERAY_CHECKOUT COMPOSE_SPEC_CHECKOUT

- `kuberay-v1.json`: the `v1` openAPIV3Schema of the RayCluster and RayService CRDs from
  KubeRay (Apache-2.0, github.com/ray-project/kuberay, ray-operator/config/crd/bases/),
  trimmed: descriptions dropped, and every embedded pod template replaced by a stub (the
  tests validate pod templates with kubernetes-validate's own PodTemplateSpec schema).
- `compose-spec.json`: the Compose Specification's JSON schema (Apache-2.0,
  github.com/compose-spec/compose-spec, schema/compose-spec.json), descriptions dropped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
KUBERAY_REF = "v1.7.0"
CRDS = {"RayCluster": "ray.io_rayclusters.yaml", "RayService": "ray.io_rayservices.yaml"}
POD_TEMPLATE_STUB = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                     "x-xlwatch-pod-template": True}


def _trim(node, key: str = ""):
    if isinstance(node, dict):
        props = node.get("properties", {})
        if key == "template" and {"metadata", "spec"} <= set(props):
            return POD_TEMPLATE_STUB
        return {k: _trim(v, k) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_trim(v) for v in node]
    return node


def _show(repo: Path, ref: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), "show", f"{ref}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def main(kuberay: Path, compose: Path) -> None:
    out = {"source": f"github.com/ray-project/kuberay {KUBERAY_REF} "
                     "ray-operator/config/crd/bases (Apache-2.0), trimmed by vendor.py"}
    for kind, name in CRDS.items():
        crd = yaml.safe_load(_show(kuberay, KUBERAY_REF, f"ray-operator/config/crd/bases/{name}"))
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
        out[kind] = _trim(version["schema"]["openAPIV3Schema"])
    (HERE / "kuberay-v1.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    rev = subprocess.run(["git", "--git-dir", str(compose), "rev-parse", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.strip()
    spec = _trim(json.loads(_show(compose, "HEAD", "schema/compose-spec.json")))
    spec["$comment"] = (f"github.com/compose-spec/compose-spec {rev} schema/compose-spec.json "
                        "(Apache-2.0), descriptions dropped by vendor.py")
    (HERE / "compose-spec.json").write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
