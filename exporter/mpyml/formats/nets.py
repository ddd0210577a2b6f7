"""The mpyml-nets binary model format (docs/formats.md): writer and reader of StoredNet."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ..labels import LABEL_TYPES, label_type
from ..nets import (ACTIVATIONS, AVG_POOL, DENSE, DEPTHWISE_CONV2D, CONV2D, DTYPES, LAYER_CODES, MAX_ACC, MAX_ITEMS,
                   MAX_LAYERS, MAX_POOL, OUTPUT_ACTIVATIONS, StoredLayer, StoredNet)

MAGIC = b"MPYN"
VERSION = 2
FILE_HEADER = struct.Struct("<4sHHII")  # magic, version, header bytes, payload bytes, crc32 of the payload
NET_HEADER = struct.Struct("<BBHHHHHIIIfiffiII")  # ..., labels block offset and bytes
LABELS_HEADER = struct.Struct("<BBHII")  # classes' type, feature names' type, 0, n_classes, n_feature_names
LABEL_TYPE_CODES = {name: i + 1 for i, name in enumerate(LABEL_TYPES)}  # 1 int, 2 str, 3 bool, 4 float
MAX_LABEL_BYTES = 65535
LAYER_RECORD = struct.Struct("<BBBB6HBBBB4i3I")

NOT_FINITE = "a weight, bias or scale is NaN or infinite"  # the device's message (mpyml_common.h)

_KINDS = {v: k for k, v in LAYER_CODES.items()}
_ACTS = {v: k for k, v in ACTIVATIONS.items()}
_OUT_ACTS = {v: k for k, v in OUTPUT_ACTIVATIONS.items()}
_DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


def version_message(version: int) -> str:
    """The device loader's message for a file of another format version."""
    if version < VERSION:
        return ("version %d is no longer read by this emlcnn (it reads version %d): export the model again"
                % (version, VERSION))
    return "format version %d is not supported (this emlcnn reads version %d)" % (version, VERSION)


def _pad4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def _label_text(kind: str, value) -> bytes:
    """One label's UTF-8 text: the text formats' encoding (docs/formats.md), without %XX escapes."""
    if kind == "str":
        text = str(value)
    elif kind == "bool":
        text = "1" if value else "0"
    elif kind == "float":
        text = repr(float(value))
    else:
        text = str(int(value))
    data = text.encode()
    if len(data) > MAX_LABEL_BYTES:
        raise ValueError("label %r: %d bytes of UTF-8, at most %d" % (text[:40], len(data), MAX_LABEL_BYTES))
    return data


def labels_block(classes, feature_names) -> bytes:
    """The labels block: class labels and feature names (either may be None)."""
    lists = [list(np.asarray(v, dtype=object).ravel()) if v is not None else [] for v in (classes, feature_names)]
    kinds = [label_type(v) if v else "str" for v in lists]
    if kinds[1] != "str":
        raise ValueError("feature names must be strs")
    body = b"".join(struct.pack("<H", len(t)) + t for kind, values in zip(kinds, lists)
                    for t in (_label_text(kind, v) for v in values))
    return LABELS_HEADER.pack(LABEL_TYPE_CODES[kinds[0]], LABEL_TYPE_CODES["str"], 0, *map(len, lists)) + body


def _parse_label(kind: str, data: bytes):
    """One label from its UTF-8 text, refused as the device's loader refuses it."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ValueError("labels block: a label is not valid UTF-8") from None
    if kind == "str":
        return text
    if kind == "bool":
        if text not in ("0", "1"):
            raise ValueError("labels block: bool label must be 0 or 1, got %r" % text[:20])
        return text == "1"
    if kind == "int":
        digits = text[1:] if text.startswith("-") else text
        if not digits or any(c not in "0123456789" for c in digits):
            raise ValueError("labels block: int label: expected a decimal integer, got %r" % text[:20])
        return int(text)
    try:
        return float(text)
    except ValueError:
        raise ValueError("labels block: float label: expected a number, got %r" % text[:20]) from None


def read_labels(body: bytes, n_layers: int, n_outputs: int, output_activation: int) -> tuple:
    """(classes, feature_names) of a checked payload's labels block, each a list or None; raises
    ValueError with the device loader's message (natmods/emlcnn/emlcnn.c)."""
    offset, size = struct.unpack_from("<II", body, NET_HEADER.size - 8)
    if (offset & 3 or offset < NET_HEADER.size + n_layers * LAYER_RECORD.size or size < LABELS_HEADER.size
            or offset + size != len(body)):
        raise ValueError("labels block: misplaced (it must end the payload, after the layer table)")
    class_type, name_type, zero, n_classes, n_names = LABELS_HEADER.unpack_from(body, offset)
    if class_type not in LABEL_TYPE_CODES.values() or name_type != LABEL_TYPE_CODES["str"] or zero:
        raise ValueError("labels block: unknown label type (1 int, 2 str, 3 bool, 4 float; feature names 2)")
    if n_classes and n_classes != (2 if output_activation == OUTPUT_ACTIVATIONS["sigmoid"] and n_outputs == 1
                                   else n_outputs):
        raise ValueError("labels block: %d classes for %d outputs" % (n_classes, n_outputs))
    if n_names > size // 2:
        raise ValueError("labels block: %d feature names cannot fit in %d bytes" % (n_names, size))
    pos, end = offset + LABELS_HEADER.size, offset + size
    lists = []
    for kind, count in ((LABEL_TYPES[class_type - 1], n_classes), ("str", n_names)):
        values = []
        for _ in range(count):
            if end - pos < 2:
                raise ValueError("labels block: truncated")
            (n,) = struct.unpack_from("<H", body, pos)
            if end - pos - 2 < n:
                raise ValueError("labels block: truncated")
            values.append(_parse_label(kind, body[pos + 2:pos + 2 + n]))
            pos += 2 + n
        lists.append(values or None)
    if pos != end:
        raise ValueError("labels block: %d bytes after the last label" % (end - pos))
    return lists[0], lists[1]


def payload(stored: StoredNet) -> bytes:
    n = len(stored.layers)
    labels = labels_block(stored.classes, stored.feature_names)
    offset = NET_HEADER.size + n * LAYER_RECORD.size
    records, blocks = [], []
    for layer in stored.layers:
        block = _pad4(b"".join(a.tobytes() for a in layer.params(stored.dtype)))
        records.append(LAYER_RECORD.pack(
            LAYER_CODES[layer.kind], ACTIVATIONS[layer.activation], layer.stride[0], layer.stride[1],
            *layer.in_shape, *layer.out_shape, layer.kernel[0], layer.kernel[1], layer.padding[0], layer.padding[1],
            layer.in_zp, layer.out_zp, layer.act_min, layer.act_max, offset, len(block), 0))
        blocks.append(block)
        offset += len(block)
    header = NET_HEADER.pack(DTYPES[stored.dtype], OUTPUT_ACTIVATIONS[stored.output_activation], n,
                             *stored.input_shape, 0, stored.n_outputs, stored.arena_bytes, stored.weights_bytes,
                             stored.input_scale, stored.input_zero_point, stored.input_inv_scale,
                             stored.output_scale, stored.output_zero_point, offset, len(labels))
    return header + b"".join(records) + b"".join(blocks) + labels


def dumps(stored: StoredNet) -> bytes:
    body = payload(stored)
    return FILE_HEADER.pack(MAGIC, VERSION, FILE_HEADER.size, len(body), zlib.crc32(body)) + body


def save(stored: StoredNet, path) -> int:
    """Writes the model file; returns its size in bytes."""
    data = dumps(stored)
    Path(path).write_bytes(data)
    return len(data)


def loads(data: bytes) -> StoredNet:
    if len(data) < FILE_HEADER.size:
        raise ValueError("file too short for the header")
    magic, version, header_bytes, n, crc = FILE_HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError("bad magic %r, expected %r" % (magic, MAGIC))
    if version != VERSION:
        raise ValueError(version_message(version))
    if header_bytes != FILE_HEADER.size:
        raise ValueError("header size %d, expected %d" % (header_bytes, FILE_HEADER.size))
    if len(data) < header_bytes + n:
        raise ValueError("file says %d bytes, the file has %d" % (header_bytes + n, len(data)))
    body = data[header_bytes:header_bytes + n]
    if zlib.crc32(body) != crc:
        raise ValueError("CRC32 of the payload does not match the file header: the file is corrupt")
    check_payload(body)
    (dtype, out_act, n_layers, h, w, c, _, n_outputs, arena, weights, in_scale, in_zp, inv_scale, out_scale,
     out_zp, _, _) = NET_HEADER.unpack_from(body)
    classes, feature_names = read_labels(body, n_layers, n_outputs, out_act)
    dtype = _DTYPE_NAMES[dtype]
    if dtype == "int8" and not np.all(np.isfinite([in_scale, inv_scale, out_scale])):
        raise ValueError(NOT_FINITE)
    layers = []
    for i in range(n_layers):
        r = LAYER_RECORD.unpack_from(body, NET_HEADER.size + i * LAYER_RECORD.size)
        kind, act, sh, sw = _KINDS[r[0]], _ACTS[r[1]], r[2], r[3]
        in_shape, out_shape = tuple(r[4:7]), tuple(r[7:10])
        kh, kw, pt, pl = r[10:14]
        in_zp_l, out_zp_l, lo, hi, off, nbytes, _ = r[14:21]
        block = body[off:off + nbytes]
        layer = StoredLayer(kind, "layer_%d" % i, in_shape, out_shape, act, (kh, kw), (sh, sw),
                            (pt, pl), None, None, in_zp=in_zp_l, out_zp=out_zp_l, act_min=lo, act_max=hi)
        oc = out_shape[2]
        n_w = {DENSE: oc * int(np.prod(in_shape)), CONV2D: oc * kh * kw * in_shape[2],
               DEPTHWISE_CONV2D: kh * kw * oc}.get(kind, 0)
        w_shape = {DENSE: (oc, int(np.prod(in_shape))), CONV2D: (oc, kh, kw, in_shape[2]), DEPTHWISE_CONV2D: (kh, kw, oc)}.get(kind)
        if dtype == "float32":
            if kind == AVG_POOL:
                layer.bias = np.frombuffer(block, "<f4", 1).astype(np.float32)
            elif kind != MAX_POOL:
                layer.weights = np.frombuffer(block, "<f4", n_w).astype(np.float32).reshape(w_shape)
                layer.bias = np.frombuffer(block, "<f4", oc, 4 * n_w).astype(np.float32)
        elif kind == AVG_POOL:
            layer.mult = np.frombuffer(block, "<i4", 1).astype(np.int64)
            layer.shift = np.frombuffer(block, "<i4", 1, 4).astype(np.int64)
        elif kind != MAX_POOL:
            layer.bias = np.frombuffer(block, "<i4", oc).astype(np.int32)
            layer.mult = np.frombuffer(block, "<i4", oc, 4 * oc).astype(np.int64)
            layer.shift = np.frombuffer(block, "<i4", oc, 8 * oc).astype(np.int64)
            weights = np.frombuffer(block, "i1", n_w, 12 * oc).astype(np.int8)
            if kind == CONV2D:  # stored [kh][kw][in_c][out_c]
                weights = np.transpose(weights.reshape(kh, kw, in_shape[2], oc), (3, 0, 1, 2))
            layer.weights = np.ascontiguousarray(weights.reshape(w_shape))
        if dtype == "float32" and not all(np.all(np.isfinite(a)) for a in (layer.weights, layer.bias) if a is not None):
            raise ValueError("layer %d: %s" % (i, NOT_FINITE))
        layers.append(layer)
    return StoredNet(dtype, (h, w, c), layers, _OUT_ACTS[out_act], input_scale=in_scale, input_zero_point=in_zp,
                     output_scale=out_scale, output_zero_point=out_zp,
                     file_inv_scale=inv_scale if dtype == "int8" else None, classes=classes,
                     feature_names=feature_names)


def _f32_finite(bits: int) -> bool:
    return (bits >> 23) & 0xFF != 0xFF


def _f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def _check_layer(body: bytes, dtype: int, n_layers: int, r: tuple, prev: tuple) -> tuple:
    """One layer record checked as mpyml_net_check_layer does: (error message or None, parameter bytes)."""
    kind, act, sh, sw = r[0:4]
    in_h, in_w, in_c, out_h, out_w, out_c = r[4:10]
    kh, kw, pt, pl = r[10:14]
    in_zp, out_zp, lo, hi, off, nbytes = r[14:20]
    if kind not in _KINDS:
        return "unknown layer kind", 0
    if act not in _ACTS:
        return "unknown fused activation (0 linear, 1 relu, 2 relu6)", 0
    shape_error = "shape does not follow from the previous layer, kernel, stride and padding"
    if (in_h, in_w, in_c) != prev or min(out_h, out_w, out_c) < 1 or out_h * out_w * out_c > MAX_ITEMS:
        return shape_error, 0
    kind = _KINDS[kind]
    if kind == DENSE:
        if (out_h, out_w, kh, kw, pt, pl, sh, sw) != (1, 1, 1, 1, 0, 0, 1, 1):
            return shape_error, 0
        taps = in_h * in_w * in_c
    else:
        if kh < 1 or kw < 1 or pt >= kh or pl >= kw or sh < 1 or sw < 1:
            return shape_error, 0
        if (out_h - 1) * sh - pt >= in_h or (out_w - 1) * sw - pl >= in_w:
            return shape_error, 0
        if kind != CONV2D and out_c != in_c:
            return shape_error, 0
        taps = kh * kw * (in_c if kind == CONV2D else 1)
    n_w = taps * out_c if kind in (DENSE, CONV2D, DEPTHWISE_CONV2D) else 0
    if kind == MAX_POOL:
        expected = 0
    elif dtype == DTYPES["float32"]:
        expected = 4 if kind == AVG_POOL else 4 * (n_w + out_c)
    else:
        expected = 8 if kind == AVG_POOL else (12 * out_c + n_w + 3) & ~3
    table_end = NET_HEADER.size + n_layers * LAYER_RECORD.size
    if (n_w > MAX_ITEMS or nbytes != expected or off & 3 or off < table_end or off > len(body)
            or nbytes > len(body) - off):
        return "parameter block misaligned, outside the payload or of the wrong size for the layer", 0
    words = struct.unpack_from("<%dI" % (expected // 4), body, off)
    if dtype == DTYPES["float32"]:
        return (None if all(_f32_finite(w) for w in words) else NOT_FINITE), expected
    quant_error = "int8 parameter out of range (zero point, clamp, scale, multiplier or shift)"
    if not all(-128 <= v <= 127 for v in (in_zp, out_zp, lo, hi)) or lo > hi:
        return quant_error, expected
    signed = [w - (1 << 32) if w >= 1 << 31 else w for w in words]
    if kind == MAX_POOL:
        return None, expected
    n_c = 1 if kind == AVG_POOL else out_c
    mult, shift = (signed[0:1], signed[1:2]) if kind == AVG_POOL else (signed[n_c:2 * n_c], signed[2 * n_c:3 * n_c])
    if kind == AVG_POOL and taps * 255 > MAX_ACC:
        return "int8 bias and products could overflow the int32 accumulator", expected
    if any(m < 0 or not 1 <= sh_ <= 62 for m, sh_ in zip(mult, shift)):
        return quant_error, expected
    if kind != AVG_POOL and any(abs(b) + taps * 255 * 128 > MAX_ACC for b in signed[:n_c]):
        return "int8 bias and products could overflow the int32 accumulator", expected
    return None, expected


def check_payload(body: bytes) -> None:
    """Raises ValueError for a payload the device refuses (mpyml_net_init in natmods/common/mpyml_nets.h),
    with the device's message."""
    if len(body) < NET_HEADER.size:
        raise ValueError("payload shorter than its header and layer table")
    (dtype, out_act, n_layers, h, w, c, _, n_outputs, arena, weights, _, in_zp, _, _, out_zp, _, _) = NET_HEADER.unpack_from(body)
    scales = struct.unpack_from("<I4xII", body, 24)
    if dtype not in _DTYPE_NAMES:
        raise ValueError("unknown network dtype (1 float32, 2 int8)")
    if out_act not in _OUT_ACTS:
        raise ValueError("unknown output activation (0 linear, 1 softmax, 2 sigmoid)")
    if not 1 <= n_layers <= MAX_LAYERS:
        raise ValueError("a network needs 1..255 layers")
    if min(h, w, c) < 1 or h * w * c > MAX_ITEMS:
        raise ValueError("shape does not follow from the previous layer, kernel, stride and padding")
    if dtype == DTYPES["int8"]:
        if not all(_f32_finite(s) for s in scales):
            raise ValueError(NOT_FINITE)
        if not all(_f32(s) > 0 for s in scales) or not (-128 <= in_zp <= 127 and -128 <= out_zp <= 127):
            raise ValueError("int8 parameter out of range (zero point, clamp, scale, multiplier or shift)")
    if len(body) < NET_HEADER.size + n_layers * LAYER_RECORD.size:
        raise ValueError("payload shorter than its header and layer table")
    prev, largest, total = (h, w, c), h * w * c, 0
    for i in range(n_layers):
        r = LAYER_RECORD.unpack_from(body, NET_HEADER.size + i * LAYER_RECORD.size)
        error, nbytes = _check_layer(body, dtype, n_layers, r, prev)
        if error:
            raise ValueError("layer %d: %s" % (i, error))
        total += nbytes
        prev = tuple(r[7:10])
        largest = max(largest, prev[0] * prev[1] * prev[2])
    item = 4 if dtype == DTYPES["float32"] else 1
    if n_outputs != prev[0] * prev[1] * prev[2] or arena != 2 * ((largest * item + 3) & ~3) or total != weights:
        raise ValueError("header's n_outputs, arena_bytes or weights_bytes disagree with the layers")


def load(path) -> StoredNet:
    return loads(Path(path).read_bytes())
