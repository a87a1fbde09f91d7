"""TF.js graph model (model.json + weight shards) -> ONNX, with only `onnx` and numpy.

A TF.js graph model is a TensorFlow GraphDef written as JSON (`modelTopology.node`) and
its constants packed into binary shards described by `weightsManifest` (name, dtype,
shape, optional quantization). This module reads both and emits an equivalent ONNX graph.

TensorFlow convolutions and pools are NHWC; ONNX's are NCHW. Rather than wrapping every
convolution in a pair of transposes, each TF tensor is held in ONNX as a permutation of
itself (`_Value.perm`: ONNX axis i is TF axis perm[i]). A TF `Transpose` only changes that
bookkeeping, element-wise ops keep it, axis-taking ops (Pad, ConcatV2, SplitV, Resize)
remap their axes, and a real Transpose is emitted only where an op needs another layout
(a Reshape, a graph output). Subgraphs of constants (shape arithmetic) are folded in numpy.

Owns the op table: the ops of the NanoDet graph (plus BiasAdd and Relu, the usual pair
after a Conv2D); any other op is refused with a `ConversionError` naming the op and node. It does not run the
model (onnxruntime does, in nanodet.py) and does not fetch anything.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 18  # Resize's `axes` attribute (resize H and W in any layout) needs 18
_NP_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_,
              "uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}
_TF_DTYPES = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_INT64": np.int64,
              "DT_BOOL": np.bool_, "DT_HALF": np.float16}


class ConversionError(ValueError):
    """The model cannot be converted; the message names the node, op or weight."""


@dataclass(frozen=True)
class _Value:
    name: str  # the ONNX tensor that holds it
    perm: tuple[int, ...]  # ONNX axis i holds TF axis perm[i]


def convert_tfjs(model_json: Path, weights_dir: Path | None = None) -> onnx.ModelProto:
    """Read a TF.js graph model and return a checked ONNX model (opset 18, float32)."""
    model_json = Path(model_json)
    spec = json.loads(model_json.read_text())
    if "modelTopology" not in spec or "node" not in spec["modelTopology"]:
        raise ConversionError(f"{model_json}: not a TF.js graph model (no modelTopology.node)")
    weights = read_weights(spec.get("weightsManifest", []), weights_dir or model_json.parent)
    return graph_to_onnx(spec, weights, name=model_json.stem)


def read_weights(manifest: list[dict[str, Any]], weights_dir: Path) -> dict[str, np.ndarray]:
    """Every weight of the manifest, dequantized to its original dtype."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        blob = b"".join((Path(weights_dir) / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(d) for d in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = w.get("quantization")
            stored = np.dtype(_NP_DTYPES.get(quant["dtype"] if quant else w["dtype"], np.void))
            if stored == np.void:
                raise ConversionError(f"weight {w['name']}: unsupported dtype {w['dtype']!r}")
            end = offset + count * stored.itemsize
            if end > len(blob):
                raise ConversionError(f"weight {w['name']}: shards end at byte {len(blob)}, "
                                      f"the manifest needs {end}")
            raw = np.frombuffer(blob, stored, count, offset).reshape(shape)
            offset = end
            original = np.dtype(_NP_DTYPES[w["dtype"]])
            if quant and quant["dtype"] != "float16":  # affine: value = q * scale + min
                raw = raw.astype(np.float32) * float(quant["scale"]) + float(quant["min"])
                if original.kind in "iu":
                    raw = np.round(raw)
            out[w["name"]] = raw.astype(original)
        if offset != len(blob):
            raise ConversionError(f"weight shards {group['paths']}: {len(blob)} bytes, the "
                                  f"manifest describes {offset}")
    return out


def graph_to_onnx(spec: dict[str, Any], weights: dict[str, np.ndarray],
                  name: str = "tfjs") -> onnx.ModelProto:
    """The ONNX model of a parsed TF.js graph-model JSON and its weights."""
    conv = _Converter(spec["modelTopology"]["node"], weights)
    outputs = _output_refs(spec, conv.nodes)
    for node in _topological(conv.nodes, outputs):
        conv.convert_node(node)
    graph = helper.make_graph(conv.onnx_nodes, name, conv.graph_inputs,
                              [conv.graph_output(ref) for ref in outputs], conv.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="xlwatch.tfjs_onnx")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def _output_refs(spec: dict[str, Any], nodes: dict[str, dict]) -> list[str]:
    outputs = spec.get("signature", {}).get("outputs")
    if outputs:
        return sorted(_clean(v.get("name", k)) for k, v in outputs.items())
    used = {_clean(i).split(":")[0] for n in nodes.values() for i in n.get("input", [])}
    return sorted(n for n, node in nodes.items() if n not in used and node["op"] != "Const")


def _clean(ref: str) -> str:
    """A TF tensor reference without its ':0' (the first output is the node name)."""
    return ref[:-2] if ref.endswith(":0") else ref


def _topological(nodes: dict[str, dict], outputs: list[str]) -> list[dict]:
    """Nodes the outputs depend on, inputs first (control inputs `^x` ignored)."""
    order: list[dict] = []
    state: dict[str, int] = {}  # 1: visiting, 2: done
    for root in outputs:
        stack = [(root.split(":")[0], False)]
        while stack:
            name, expanded = stack.pop()
            if name not in nodes:
                raise ConversionError(f"tensor {name!r} is used but no node defines it")
            if expanded:
                state[name] = 2
                order.append(nodes[name])
                continue
            if state.get(name) == 2:
                continue
            if state.get(name) == 1:
                raise ConversionError(f"node {name!r}: the graph has a cycle")
            state[name] = 1
            stack.append((name, True))
            for ref in nodes[name].get("input", []):
                dep = ref.split(":")[0]
                if not ref.startswith("^") and state.get(dep) != 2:
                    stack.append((dep, False))
    return order


def _attr(node: dict, key: str, default: Any = None) -> Any:
    """A node attribute as a Python value (strings are base64 in TF.js JSON)."""
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "list" in value:
        items = value["list"]
        if "i" in items:
            return [int(i) for i in items["i"]]
        if "f" in items:
            return [float(f) for f in items["f"]]
        if "s" in items:
            return [base64.b64decode(s).decode() for s in items["s"]]
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    return value


def _identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


_NCHW = (0, 3, 1, 2)  # the ONNX layout of an NHWC TF tensor


class _Converter:
    def __init__(self, nodes: list[dict], weights: dict[str, np.ndarray]) -> None:
        self.nodes = {n["name"]: n for n in nodes}
        self.weights = weights
        self.consts: dict[str, np.ndarray] = {}
        self.values: dict[str, _Value] = {}
        self.onnx_nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.graph_inputs: list[onnx.ValueInfoProto] = []
        self._layouts: dict[tuple[str, tuple[int, ...]], str] = {}
        self._serial = 0

    # -- plumbing ---------------------------------------------------------------------
    def convert_node(self, node: dict) -> None:
        op = node["op"]
        inputs = [_clean(i) for i in node.get("input", []) if not i.startswith("^")]
        if op in _FOLD and inputs and all(i in self.consts for i in inputs):
            try:
                self.consts[node["name"]] = np.asarray(
                    _FOLD[op](node, *[self.consts[i] for i in inputs]))
                return
            except (ValueError, IndexError) as exc:
                raise ConversionError(f"node {node['name']!r} ({op}): {exc}") from exc
        handler = _OPS.get(op)
        if handler is None:
            raise ConversionError(f"unsupported op {op!r} at node {node['name']!r}")
        handler(self, node, inputs)

    def fresh(self, hint: str) -> str:
        self._serial += 1
        return f"{hint}__{self._serial}"

    def emit(self, op: str, inputs: list[str], hint: str, n_out: int = 1,
             **attrs: Any) -> list[str]:
        outs = [self.fresh(hint) for _ in range(n_out)]
        self.onnx_nodes.append(helper.make_node(op, inputs, outs, name=outs[0], **attrs))
        return outs

    def initializer(self, array: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, node: dict, ref: str, what: str) -> np.ndarray:
        if ref not in self.consts:
            raise ConversionError(f"node {node['name']!r} ({node['op']}): {what} ({ref!r}) "
                                  "must be a constant")
        return self.consts[ref]

    def rank(self, ref: str) -> int:
        return len(self.values[ref].perm) if ref in self.values else self.consts[ref].ndim

    def perm_of(self, ref: str) -> tuple[int, ...]:
        return self.values[ref].perm if ref in self.values else _identity(self.rank(ref))

    def value(self, ref: str, perm: tuple[int, ...] | None = None) -> str:
        """The ONNX tensor holding TF tensor `ref` in layout `perm` (TF's own by default)."""
        perm = perm if perm is not None else _identity(self.rank(ref))
        if ref in self.consts:
            key = (ref, perm)
            if key not in self._layouts:
                self._layouts[key] = self.initializer(
                    np.transpose(self.consts[ref], perm), ref.split("/")[-1])
            return self._layouts[key]
        if ref not in self.values:
            raise ConversionError(f"tensor {ref!r} was never produced")
        have = self.values[ref]
        if have.perm == perm:
            return have.name
        key = (ref, perm)
        if key not in self._layouts:
            # held = transpose(tf, have.perm); wanted = transpose(tf, perm)
            step = [have.perm.index(a) for a in perm]
            self._layouts[key] = self.emit("Transpose", [have.name], "layout", perm=step)[0]
        return self._layouts[key]

    def put(self, ref: str, name: str, perm: tuple[int, ...]) -> None:
        self.values[ref] = _Value(name, tuple(perm))

    def graph_output(self, ref: str) -> onnx.ValueInfoProto:
        name = ref.replace(":", "_")
        self.onnx_nodes.append(helper.make_node("Identity", [self.value(ref)], [name]))
        # Static sizes come from onnxruntime's own inference; the rank is known here.
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * self.rank(ref))


# -- constant folding (shape arithmetic between constants) -------------------------------
def _sparse_to_dense(node: dict, indices, shape, values, default):
    dense = np.full(shape.astype(np.int64), default, dtype=np.asarray(default).dtype)
    idx = np.asarray(indices).reshape(len(np.asarray(indices)), -1) if np.size(indices) else []
    for k, where in enumerate(idx):
        dense[tuple(where)] = values if np.ndim(values) == 0 else values[k]
    return dense


_FOLD: dict[str, Callable[..., np.ndarray]] = {
    "Identity": lambda n, x: x,
    "Add": lambda n, a, b: a + b,
    "AddV2": lambda n, a, b: a + b,
    "Sub": lambda n, a, b: a - b,
    "Mul": lambda n, a, b: a * b,
    "Reshape": lambda n, x, s: x.reshape(s.astype(np.int64)),
    "Transpose": lambda n, x, p: np.transpose(x, p.astype(np.int64)),
    "ConcatV2": lambda n, *xs: np.concatenate(xs[:-1], axis=int(xs[-1])),
    "SparseToDense": _sparse_to_dense,
}


# -- op handlers ------------------------------------------------------------------------
def _const_node(c: _Converter, node: dict, inputs: list[str]) -> None:
    name = node["name"]
    if name not in c.weights:
        raise ConversionError(f"Const node {name!r} has no weight in the manifest")
    dtype = _TF_DTYPES.get(_attr(node, "dtype"), None)
    value = c.weights[name]
    c.consts[name] = value.astype(dtype) if dtype is not None else value


def _placeholder(c: _Converter, node: dict, inputs: list[str]) -> None:
    dims = _attr(node, "shape", {}).get("shape", {}).get("dim", [])
    shape = [int(d["size"]) if int(d.get("size", -1)) >= 0 else None for d in dims]
    if _attr(node, "dtype") != "DT_FLOAT":
        raise ConversionError(f"input {node['name']!r}: only float inputs are supported")
    c.graph_inputs.append(helper.make_tensor_value_info(node["name"], TensorProto.FLOAT, shape))
    c.put(node["name"], node["name"], _identity(len(shape)))


def _conv_layout(c: _Converter, node: dict) -> tuple[tuple[int, ...], slice]:
    fmt = _attr(node, "data_format", "NHWC")
    if fmt not in ("NHWC", "NCHW"):
        raise ConversionError(f"node {node['name']!r}: data_format {fmt!r} not supported")
    return (_NCHW, slice(1, 3)) if fmt == "NHWC" else ((0, 1, 2, 3), slice(2, 4))


def _window_attrs(node: dict, spatial: slice, kernel_key: str | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"strides": _attr(node, "strides", [1, 1, 1, 1])[spatial]}
    if kernel_key:
        attrs["kernel_shape"] = _attr(node, kernel_key)[spatial]
    padding = _attr(node, "padding", "VALID")
    if padding == "SAME":
        attrs["auto_pad"] = "SAME_UPPER"  # TF puts the odd pixel at the end, as SAME_UPPER
    elif padding != "VALID":
        raise ConversionError(f"node {node['name']!r}: padding {padding!r} not supported")
    return attrs


def _conv(c: _Converter, node: dict, inputs: list[str]) -> None:
    perm, spatial = _conv_layout(c, node)
    kernel = c.const(node, inputs[1], "the filter").astype(np.float32)  # HWIO
    attrs = _window_attrs(node, spatial, None)
    attrs["dilations"] = _attr(node, "dilations", [1, 1, 1, 1])[spatial]
    weight = c.initializer(kernel.transpose(3, 2, 0, 1), "filter")  # OIHW
    out = c.emit("Conv", [c.value(inputs[0], perm), weight], node["name"], **attrs)[0]
    c.put(node["name"], out, perm)


_ACTIVATIONS: dict[str, Callable[[_Converter, dict, str], str]] = {
    "Relu": lambda c, n, x: c.emit("Relu", [x], n["name"])[0],
    "LeakyRelu": lambda c, n, x: c.emit("LeakyRelu", [x], n["name"],
                                        alpha=_attr(n, "alpha", 0.2))[0],
    "Sigmoid": lambda c, n, x: c.emit("Sigmoid", [x], n["name"])[0],
}


def _activation(c: _Converter, node: dict, inputs: list[str]) -> None:
    perm = c.perm_of(inputs[0])
    c.put(node["name"], _ACTIVATIONS[node["op"]](c, node, c.value(inputs[0], perm)), perm)


def _add(c: _Converter, node: dict, inputs: list[str]) -> None:
    a, b = inputs[:2]
    if node["op"] == "BiasAdd":
        bias = c.const(node, b, "the bias")
        if _attr(node, "data_format", "NHWC") == "NCHW":
            bias = bias.reshape(-1, *([1] * (c.rank(a) - 2)))
        c.consts[b + "/bias_as_broadcast"] = bias
        b = b + "/bias_as_broadcast"
    dynamic = [r for r in (a, b) if r in c.values]
    rank = max(c.rank(a), c.rank(b))
    # One layout for both; a lower-rank tensor operand broadcasts in TF's own layouts.
    same = all(c.rank(r) == rank for r in dynamic)
    perm = c.perm_of(dynamic[0]) if dynamic and same else _identity(rank)
    names = []
    for r in (a, b):
        if r in c.consts:  # numpy broadcasting to the full rank, then the layout
            arr = c.consts[r].reshape((1,) * (rank - c.consts[r].ndim) + c.consts[r].shape)
            names.append(c.initializer(np.transpose(arr, perm), r.split("/")[-1]))
        else:
            names.append(c.value(r, perm if c.rank(r) == rank else None))
    c.put(node["name"], c.emit("Add", names, node["name"])[0], perm)


def _identity_op(c: _Converter, node: dict, inputs: list[str]) -> None:
    c.values[node["name"]] = c.values[inputs[0]]


def _transpose(c: _Converter, node: dict, inputs: list[str]) -> None:
    # y = transpose(x, p), held = transpose(x, q)  =>  held = transpose(y, inv(p)[q])
    p = [int(v) for v in c.const(node, inputs[1], "the permutation")]
    inv = [p.index(a) for a in range(len(p))]
    have = c.values[inputs[0]]
    c.put(node["name"], have.name, tuple(inv[a] for a in have.perm))


def _pad(c: _Converter, node: dict, inputs: list[str]) -> None:
    perm = c.perm_of(inputs[0])
    pads = c.const(node, inputs[1], "the paddings").astype(np.int64)  # [rank, 2]
    onnx_pads = [pads[a, 0] for a in perm] + [pads[a, 1] for a in perm]
    args = [c.value(inputs[0], perm), c.initializer(np.array(onnx_pads, np.int64), "pads")]
    if node["op"] == "PadV2":
        fill = c.const(node, inputs[2], "the constant value").astype(np.float32).reshape(())
        args.append(c.initializer(fill, "fill"))
    c.put(node["name"], c.emit("Pad", args, node["name"], mode="constant")[0], perm)


def _maxpool(c: _Converter, node: dict, inputs: list[str]) -> None:
    perm, spatial = _conv_layout(c, node)
    attrs = _window_attrs(node, spatial, "ksize")
    c.put(node["name"], c.emit("MaxPool", [c.value(inputs[0], perm)], node["name"], **attrs)[0],
          perm)


def _concat(c: _Converter, node: dict, inputs: list[str]) -> None:
    parts = inputs[:-1]
    axis = int(c.const(node, inputs[-1], "the axis"))
    dynamic = [r for r in parts if r in c.values]
    perm = c.perm_of(dynamic[0] if dynamic else parts[0])
    axis = axis % len(perm)
    out = c.emit("Concat", [c.value(r, perm) for r in parts], node["name"],
                 axis=perm.index(axis))[0]
    c.put(node["name"], out, perm)


def _resize_bilinear(c: _Converter, node: dict, inputs: list[str]) -> None:
    # TF resizes an NHWC tensor; ONNX Resize with `axes` resizes H and W in any layout.
    perm = c.perm_of(inputs[0])
    size = c.const(node, inputs[1], "the size").astype(np.int64)
    align, half = _attr(node, "align_corners", False), _attr(node, "half_pixel_centers", False)
    # TF's half-pixel centres clamp to the edge pixels, as ONNX's half_pixel does.
    mode = "align_corners" if align else "half_pixel" if half else "asymmetric"
    args = [c.value(inputs[0], perm), "", "", c.initializer(size, "size")]
    out = c.emit("Resize", args, node["name"], axes=[perm.index(1), perm.index(2)],
                 mode="linear", coordinate_transformation_mode=mode)[0]
    c.put(node["name"], out, perm)


def _reshape(c: _Converter, node: dict, inputs: list[str]) -> None:
    shape = c.const(node, inputs[1], "the shape").astype(np.int64).reshape(-1)
    out = c.emit("Reshape", [c.value(inputs[0]), c.initializer(shape, "shape")], node["name"])[0]
    c.put(node["name"], out, _identity(len(shape)))


def _split_v(c: _Converter, node: dict, inputs: list[str]) -> None:
    x, sizes = inputs[0], c.const(node, inputs[1], "the split sizes").astype(np.int64)
    axis = int(c.const(node, inputs[2], "the axis"))
    if (sizes < 0).any():
        raise ConversionError(f"node {node['name']!r} (SplitV): a -1 split size needs static "
                              "shapes; not supported")
    perm = c.perm_of(x)
    outs = c.emit("Split", [c.value(x, perm), c.initializer(sizes, "split")], node["name"],
                  n_out=len(sizes), axis=perm.index(axis % len(perm)))
    for k, out in enumerate(outs):
        c.put(node["name"] if k == 0 else f"{node['name']}:{k}", out, perm)


_OPS: dict[str, Callable[[_Converter, dict, list[str]], None]] = {
    "Const": _const_node,
    "Placeholder": _placeholder,
    "Identity": _identity_op,
    "Conv2D": _conv,
    "Relu": _activation,
    "LeakyRelu": _activation,
    "Sigmoid": _activation,
    "BiasAdd": _add,
    "Add": _add,
    "AddV2": _add,
    "Transpose": _transpose,
    "Pad": _pad,
    "PadV2": _pad,
    "MaxPool": _maxpool,
    "ConcatV2": _concat,
    "ResizeBilinear": _resize_bilinear,
    "Reshape": _reshape,
    "SplitV": _split_v,
}
