"""The mpyml-nets binary model format (docs/formats.md): writer and reader of StoredNet."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from .nets import (ACTIVATIONS, AVG_POOL, DENSE, DEPTHWISE_CONV2D, CONV2D, DTYPES, LAYER_CODES, MAX_POOL,
                   OUTPUT_ACTIVATIONS, StoredLayer, StoredNet)

MAGIC = b"MPYN"
VERSION = 1
FILE_HEADER = struct.Struct("<4sHHII")  # magic, version, header bytes, payload bytes, crc32 of the payload
NET_HEADER = struct.Struct("<BBHHHHHIIIfiffi")
LAYER_RECORD = struct.Struct("<BBBB6HBBBB4i3I")

NOT_FINITE = "a weight, bias or scale is NaN or infinite"  # the device's message (mpyml_common.h)

_KINDS = {v: k for k, v in LAYER_CODES.items()}
_ACTS = {v: k for k, v in ACTIVATIONS.items()}
_OUT_ACTS = {v: k for k, v in OUTPUT_ACTIVATIONS.items()}
_DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


def _pad4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def payload(stored: StoredNet) -> bytes:
    n = len(stored.layers)
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
                             stored.output_scale, stored.output_zero_point)
    return header + b"".join(records) + b"".join(blocks)


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
        raise ValueError("format version %d not supported (reads %d)" % (version, VERSION))
    if header_bytes != FILE_HEADER.size:
        raise ValueError("header size %d, expected %d" % (header_bytes, FILE_HEADER.size))
    if len(data) < header_bytes + n:
        raise ValueError("file says %d bytes, the file has %d" % (header_bytes + n, len(data)))
    body = data[header_bytes:header_bytes + n]
    if zlib.crc32(body) != crc:
        raise ValueError("CRC32 of the payload does not match the file header: the file is corrupt")
    (dtype, out_act, n_layers, h, w, c, _, n_outputs, arena, weights, in_scale, in_zp, _inv, out_scale,
     out_zp) = NET_HEADER.unpack_from(body)
    dtype = _DTYPE_NAMES[dtype]
    if dtype == "int8" and not np.all(np.isfinite([in_scale, _inv, out_scale])):
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
                     output_scale=out_scale, output_zero_point=out_zp)


def load(path) -> StoredNet:
    return loads(Path(path).read_bytes())
