"""The TF.js graph-model -> ONNX converter on tiny hand-built graphs, against numpy.

Each graph is written as a real model.json + weights .bin pair, converted, and run by
onnxruntime; references are plain numpy (or OpenCV for bilinear resizing). The real
NanoDet graph is exercised end to end by test_nanodet.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from model.cv.tfjs_onnx import ConversionError, convert_tfjs, read_weights

_DT = {np.float32: "DT_FLOAT", np.int32: "DT_INT32", np.int64: "DT_INT64"}


def _attr(value):
    if isinstance(value, dict):
        return value
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, int):
        return {"i": str(value)}
    if isinstance(value, float):
        return {"f": value}
    if isinstance(value, str):
        return {"s": base64.b64encode(value.encode()).decode()}
    if all(isinstance(v, str) for v in value):
        return {"list": {"s": [base64.b64encode(v.encode()).decode() for v in value]}}
    return {"list": {"i": [str(v) for v in value]}}


class TfjsGraph:
    """Builds a TF.js graph model (JSON topology + one weights shard) node by node."""

    def __init__(self) -> None:
        self.nodes: list[dict] = []
        self.weights: list[tuple[str, np.ndarray, str]] = []

    def input(self, name: str, shape: list[int]) -> str:
        dims = [{"size": str(d)} for d in shape]
        self.nodes.append({"name": name, "op": "Placeholder", "attr": {
            "dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {"dim": dims}}}})
        return name

    def const(self, name: str, value, dtype=np.float32, tf_dtype: str | None = None) -> str:
        arr = np.asarray(value, dtype=dtype)
        self.nodes.append({"name": name, "op": "Const", "attr": {
            "dtype": {"type": tf_dtype or _DT[dtype]}}})
        self.weights.append((name, arr, "float32" if dtype == np.float32 else "int32"))
        return name

    def op(self, name: str, op: str, inputs: list[str], **attrs) -> str:
        self.nodes.append({"name": name, "op": op, "input": inputs,
                           "attr": {k: _attr(v) for k, v in attrs.items()}})
        return name

    def write(self, directory: Path, outputs: list[str]) -> Path:
        blob = b"".join(arr.astype(np.float32 if kind == "float32" else np.int32).tobytes()
                        for _, arr, kind in self.weights)
        (directory / "w.bin").write_bytes(blob)
        spec = {
            "format": "graph-model",
            "modelTopology": {"node": self.nodes},
            "signature": {"outputs": {f"{o}:0": {"name": f"{o}:0"} for o in outputs}},
            "weightsManifest": [{"paths": ["w.bin"], "weights": [
                {"name": n, "shape": list(a.shape), "dtype": kind} for n, a, kind in self.weights]}],
        }
        path = directory / "model.json"
        path.write_text(json.dumps(spec))
        return path


def _run(model, **feeds) -> list[np.ndarray]:
    return list(_run_named(model, **feeds).values())


def _run_named(model, **feeds) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def _conv_nhwc(x: np.ndarray, k: np.ndarray, stride: int, padding: str) -> np.ndarray:
    """TF's Conv2D semantics, written out: NHWC input, HWIO filter, VALID or SAME."""
    kh, kw = k.shape[:2]
    _, h, w, _ = x.shape
    if padding == "SAME":
        oh, ow = -(-h // stride), -(-w // stride)
        ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, k.shape[3]), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            out[:, i, j] = np.einsum("nhwc,hwco->no", patch, k)
    return out


@pytest.mark.parametrize(("padding", "stride"), [("VALID", 1), ("SAME", 1), ("SAME", 2),
                                                 ("VALID", 2)])
def test_conv2d_biasadd_relu_matches_a_numpy_convolution(tmp_path, padding, stride):
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
    bias = rng.normal(size=4).astype(np.float32)
    g = TfjsGraph()
    x = g.input("image", [1, 7, 6, 3])
    conv = g.op("conv", "Conv2D", [x, g.const("kernel", kernel)], padding=padding,
                strides=[1, stride, stride, 1], data_format="NHWC")
    biased = g.op("biased", "BiasAdd", [conv, g.const("bias", bias)])
    g.op("out", "Relu", [biased])
    model = convert_tfjs(g.write(tmp_path, ["out"]))

    image = rng.normal(size=(1, 7, 6, 3)).astype(np.float32)
    (got,) = _run(model, image=image)
    want = np.maximum(_conv_nhwc(image, kernel, stride, padding) + bias, 0)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_nchw_graph_around_nhwc_convs_needs_no_layout_transposes(tmp_path):
    """The NanoDet pattern: an NCHW graph with Transposes around each NHWC convolution and
    Pads/Concats/Adds in NCHW. Layout bookkeeping removes every Transpose."""
    rng = np.random.default_rng(1)
    k1 = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    b1 = rng.normal(size=3).astype(np.float32)
    g = TfjsGraph()
    x = g.input("input_1", [1, 2, 5, 5])
    pads = g.const("pads", [[0, 0], [0, 0], [1, 1], [1, 1]], np.int32)
    padded = g.op("pad", "Pad", [x, pads])
    nhwc = g.op("to_nhwc", "Transpose", [padded, g.const("p1", [0, 2, 3, 1], np.int32)])
    conv = g.op("conv", "Conv2D", [nhwc, g.const("k1", k1)], padding="VALID",
                strides=[1, 1, 1, 1], data_format="NHWC")
    added = g.op("add", "Add", [conv, g.const("b1", b1)])
    nchw = g.op("to_nchw", "Transpose", [added, g.const("p2", [0, 3, 1, 2], np.int32)])
    act = g.op("act", "LeakyRelu", [nchw], alpha=0.1)
    g.op("cat", "ConcatV2", [act, x, g.const("axis", 1, np.int32)])
    model = convert_tfjs(g.write(tmp_path, ["cat"]))
    assert "Transpose" not in {n.op_type for n in model.graph.node}

    image = rng.normal(size=(1, 2, 5, 5)).astype(np.float32)
    (got,) = _run(model, input_1=image)
    conv_ref = _conv_nhwc(image.transpose(0, 2, 3, 1), k1, 1, "SAME") + b1
    act_ref = np.where(conv_ref > 0, conv_ref, 0.1 * conv_ref).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, np.concatenate([act_ref, image], axis=1), atol=1e-5)


def test_head_split_sigmoid_reshape_with_folded_shape_arithmetic(tmp_path):
    """The NanoDet head: SplitV on channels, Sigmoid, Reshape by a shape computed from
    constants (AddV2 of a SparseToDense), Transpose to [1, cells, channels]."""
    g = TfjsGraph()
    x = g.input("input_1", [1, 6, 2, 3])
    split = g.op("split", "SplitV", [x, g.const("sizes", [2, 4], np.int32),
                                     g.const("dim", 1, np.int32)], num_split=2)
    score = g.op("sig", "Sigmoid", [split])
    zeros = g.op("dense", "SparseToDense", [
        g.const("where", np.zeros((0, 1)), np.int32, "DT_INT64"),
        g.const("dense_shape", [3], np.int32, "DT_INT64"),
        g.const("gather", np.zeros(0), np.int32, "DT_INT64"),
        g.const("zero", 0, np.int32, "DT_INT64")])
    shape = g.op("shape", "AddV2", [g.const("base", [1, 2, -1], np.int32, "DT_INT64"), zeros])
    flat = g.op("flat", "Reshape", [score, shape])
    g.op("scores", "Transpose", [flat, g.const("perm", [0, 2, 1], np.int32)])
    g.op("boxes", "Reshape", ["split:1", g.const("shape4", [1, 4, 6], np.int32)])
    model = convert_tfjs(g.write(tmp_path, ["scores", "boxes"]))

    data = np.random.default_rng(2).normal(size=(1, 6, 2, 3)).astype(np.float32)
    out = _run_named(model, input_1=data)
    scores, boxes = out["scores"], out["boxes"]
    want = (1 / (1 + np.exp(-data[:, :2]))).reshape(1, 2, -1).transpose(0, 2, 1)
    np.testing.assert_allclose(scores, want, atol=1e-6)
    np.testing.assert_array_equal(boxes, data[:, 2:].reshape(1, 4, 6))


def test_resize_bilinear_half_pixel_matches_opencv(tmp_path):
    g = TfjsGraph()
    x = g.input("image", [1, 4, 5, 3])
    g.op("up", "ResizeBilinear", [x, g.const("size", [8, 10], np.int32)],
         half_pixel_centers=True, align_corners=False)
    model = convert_tfjs(g.write(tmp_path, ["up"]))
    image = np.random.default_rng(3).uniform(size=(1, 4, 5, 3)).astype(np.float32)
    (got,) = _run(model, image=image)
    want = cv2.resize(image[0], (10, 8), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(got[0], want, atol=1e-5)


def test_maxpool_with_minus_infinity_padding(tmp_path):
    g = TfjsGraph()
    x = g.input("image", [1, 1, 4, 4])  # NCHW, as NanoDet's stem
    padded = g.op("pad", "PadV2", [x, g.const("p", [[0, 0], [0, 0], [1, 1], [1, 1]], np.int32),
                                   g.const("fill", -np.inf)])
    nhwc = g.op("t", "Transpose", [padded, g.const("perm", [0, 2, 3, 1], np.int32)])
    g.op("pool", "MaxPool", [nhwc], ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="VALID",
         data_format="NHWC")
    model = convert_tfjs(g.write(tmp_path, ["pool"]))
    image = -np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)  # all <= 0: padding must lose
    (got,) = _run(model, image=image)
    np.testing.assert_array_equal(got[0, :, :, 0], [[0, -1], [-4, -5]])  # zero padding: all 0


def test_unknown_op_is_refused_naming_the_op_and_the_node(tmp_path):
    g = TfjsGraph()
    x = g.input("image", [1, 4])
    g.op("head/mystery", "Erf", [x])
    with pytest.raises(ConversionError, match=r"unsupported op 'Erf' at node 'head/mystery'"):
        convert_tfjs(g.write(tmp_path, ["head/mystery"]))


def test_quantized_weights_are_dequantized(tmp_path):
    half = np.array([1.5, -2.25, 65504.0, -np.inf], np.float16)
    q8 = np.array([0, 10, 255], np.uint8)
    (tmp_path / "w.bin").write_bytes(half.tobytes() + q8.tobytes())
    manifest = [{"paths": ["w.bin"], "weights": [
        {"name": "h", "shape": [4], "dtype": "float32",
         "quantization": {"dtype": "float16", "original_dtype": "float32"}},
        {"name": "q", "shape": [3], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
    ]}]
    w = read_weights(manifest, tmp_path)
    assert w["h"].dtype == np.float32 and w["h"].tolist() == [1.5, -2.25, 65504.0, -np.inf]
    np.testing.assert_allclose(w["q"], [-1.0, 4.0, 126.5])


def test_weight_shards_of_the_wrong_size_are_refused(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"\0" * 10)
    manifest = [{"paths": ["w.bin"], "weights": [{"name": "k", "shape": [4], "dtype": "float32"}]}]
    with pytest.raises(ConversionError, match="weight k: shards end at byte 10"):
        read_weights(manifest, tmp_path)
    (tmp_path / "w.bin").write_bytes(b"\0" * 20)
    with pytest.raises(ConversionError, match="20 bytes, the manifest describes 16"):
        read_weights(manifest, tmp_path)
