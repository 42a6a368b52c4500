"""Reading and writing .safetensors files with numpy (no torch needed).

The format (https://github.com/huggingface/safetensors): an unsigned 64-bit
little-endian header length, a JSON header of that many bytes mapping each
tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (plus an
optional "__metadata__" object of strings), then the raw little-endian
bytes of every tensor, contiguous, in the order of their offsets.  The
header is padded with spaces to a multiple of 8 bytes, and tensors are
written largest dtype first, as the reference implementation does, so that
every tensor's data is aligned to its element size.

    load(path) -> {name: numpy.ndarray}
    save(tensors, path, metadata=None, dtypes=None)
    load_metadata(path) -> {str: str}
    loads(data) / dumps(tensors, metadata=None, dtypes=None)   (bytes in memory)

BF16 has no numpy type: load() returns BF16 tensors as float32 (exact), or
as their raw uint16 bit patterns with bf16="uint16"; save() writes BF16 for
torch.bfloat16 tensors, and converts float arrays to BF16 (round to
nearest even) for the names given in dtypes={"name": "BF16"} (or
dtypes="BF16" for every floating-point tensor).  Torch tensors are accepted
by save() and dumps() (moved to the CPU and detached; torch is not imported
otherwise).
"""

import json
import os
import struct
import tempfile

import numpy as np

__all__ = ["load", "loads", "save", "dumps", "load_metadata", "DTYPES"]

# safetensors dtype -> numpy dtype (little-endian); BF16 is handled apart.
DTYPES = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I32": np.dtype("<i4"),
    "U32": np.dtype("<u4"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "U64": np.dtype("<u8"),
}
# The reference implementation's dtype order (its Dtype enum); tensors are
# written from the last of these to the first, then by name.
_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32",
          "F32", "F64", "I64", "U64"]
_FROM_NUMPY = {
    "b": "BOOL", "u1": "U8", "i1": "I8", "i2": "I16", "u2": "U16", "f2": "F16", "i4": "I32",
    "u4": "U32", "f4": "F32", "f8": "F64", "i8": "I64", "u8": "U64",
}
MAX_HEADER = 100_000_000  # the reference implementation's limit


# ---- Reading --------------------------------------------------------------------


def _bad(where, msg):
    return ValueError("%s: %s" % (where, msg))


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("key %r appears twice" % k)
        out[k] = v
    return out


def _parse_header(where, head, data_size):
    """The (tensors, metadata) of a header; tensors is a list of
    (name, dtype, shape, begin, end) sorted by offset."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _bad(where, "the header is not valid UTF-8 (byte %d)" % e.start) from None
    if not text.startswith("{"):
        raise _bad(where, "the header does not start with '{' (not a .safetensors file?)")
    try:
        h = json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError as e:
        raise _bad(where, "the header is not valid JSON: %s" % e) from None
    if not isinstance(h, dict):
        raise _bad(where, "the header is not a JSON object")
    meta = h.pop("__metadata__", None)
    if meta is not None and (not isinstance(meta, dict) or
                             not all(isinstance(v, str) for v in meta.values())):
        raise _bad(where, "'__metadata__' must be an object of string values")
    tensors = []
    for name, info in h.items():
        w = "%s: tensor %r" % (where, name)
        if not isinstance(info, dict):
            raise ValueError("%s: its entry is not an object" % w)
        for key in ("dtype", "shape", "data_offsets"):
            if key not in info:
                raise ValueError("%s: its entry has no %r" % (w, key))
        dt, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in DTYPES:
            raise ValueError("%s: dtype %r is not supported (supported: %s)"
                             % (w, dt, ", ".join(sorted(DTYPES))))
        if (not isinstance(shape, list) or
                not all(type(d) is int and d >= 0 for d in shape)):
            raise ValueError("%s: shape %r is not a list of non-negative integers" % (w, shape))
        if (not isinstance(offs, list) or len(offs) != 2 or
                not all(type(o) is int for o in offs) or not 0 <= offs[0] <= offs[1]):
            raise ValueError("%s: data_offsets %r are not [begin, end] with 0 <= begin <= end"
                             % (w, offs))
        n = DTYPES[dt].itemsize
        for d in shape:
            n *= d
        if offs[1] - offs[0] != n:
            raise ValueError("%s: data_offsets %r hold %d bytes but dtype %s and shape %r need %d"
                             % (w, offs, offs[1] - offs[0], dt, shape, n))
        tensors.append((name, dt, tuple(shape), offs[0], offs[1]))
    tensors.sort(key=lambda t: (t[3], t[4]))
    end = 0
    for name, _, _, b, e in tensors:
        if b != end:
            raise _bad(where, "tensor %r starts at data byte %d but the data before it ends at "
                       "%d (tensors must be contiguous and must not overlap)" % (name, b, end))
        end = e
    if end != data_size:
        raise _bad(where, "the header's tensors cover %d bytes of data but the file holds %d "
                   "(truncated, or trailing bytes)" % (end, data_size))
    return tensors, (meta or {})


def _split(where, data):
    """(tensors, metadata, data offset) of a whole file's bytes."""
    if len(data) < 8:
        raise _bad(where, "truncated: %d bytes, shorter than the 8-byte header length"
                   % len(data))
    if data[:6] == b"\x93NUMPY":
        raise _bad(where, "this is a .npy file, not a .safetensors file")
    if data[:4] == b"PK\x03\x04":
        raise _bad(where, "this is a zip archive (a torch.save file or an .npz), not a "
                   ".safetensors file")
    if data[0] == 0x80 and 2 <= data[1] <= 5 and data[8:9] != b"{":
        raise _bad(where, "this is a pickle (a torch.save file), not a .safetensors file")
    (hlen,) = struct.unpack("<Q", data[:8])
    if hlen > MAX_HEADER:
        raise _bad(where, "header length %d exceeds %d bytes (not a .safetensors file?)"
                   % (hlen, MAX_HEADER))
    if hlen > len(data) - 8:
        raise _bad(where, "truncated: the header length is %d but only %d bytes follow"
                   % (hlen, len(data) - 8))
    tensors, meta = _parse_header(where, data[8:8 + hlen], len(data) - 8 - hlen)
    return tensors, meta, 8 + hlen


def _bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _decode(data, where, bf16):
    if bf16 not in ("float32", "uint16"):
        raise ValueError("bf16 must be 'float32' or 'uint16', not %r" % (bf16,))
    tensors, meta, off = _split(where, data)
    out = {}
    buf = memoryview(data)
    for name, dt, shape, b, e in tensors:
        a = np.frombuffer(buf[off + b:off + e], dtype=DTYPES[dt]).reshape(shape)
        if dt == "BF16" and bf16 == "float32":
            a = _bf16_to_f32(a)
        else:
            a = a.astype(a.dtype.newbyteorder("="), copy=True)
        out[name] = a
    # Names in the order of the header's data, as the file holds them.
    return out, meta


def loads(data, bf16="float32"):
    """The tensors of .safetensors bytes, as {name: numpy array}."""
    return _decode(bytes(data), "<bytes>", bf16)[0]


def load(path, bf16="float32"):
    """The tensors of a .safetensors file, as {name: numpy array} (writable
    copies in native byte order).  BF16 tensors come back as float32, or as
    raw uint16 bits with bf16="uint16".  A malformed file raises ValueError
    naming the file and the problem."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    return _decode(data, path, bf16)[0]


def load_metadata(path):
    """The "__metadata__" strings of a .safetensors file ({} when none)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        first = f.read(8)
        if len(first) < 8:
            raise _bad(path, "truncated: %d bytes, shorter than the 8-byte header length"
                       % len(first))
        (hlen,) = struct.unpack("<Q", first)
        size = os.fstat(f.fileno()).st_size
        if hlen > MAX_HEADER or hlen > size - 8:
            raise _bad(path, "header length %d does not fit the file (%d bytes)" % (hlen, size))
        head = f.read(hlen)
    return _parse_header(path, head, size - 8 - hlen)[1]


# ---- Writing --------------------------------------------------------------------


def _f32_to_bf16(a):
    """float32 -> bfloat16 bits, rounding to nearest even (NaN stays NaN)."""
    u = np.asarray(a, dtype=np.float32, order="C").view(np.uint32)
    r = ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        r = np.where(nan, ((u >> 16) | np.uint32(0x40)).astype(np.uint16), r)
    return r


def _is_torch(x):
    return type(x).__module__.split(".")[0] == "torch"


def _as_array(name, x):
    """(safetensors dtype, little-endian C-order numpy array) of one tensor."""
    if _is_torch(x):
        import torch

        t = x.detach().to("cpu").contiguous()
        if t.dtype == torch.bfloat16:
            return "BF16", t.view(torch.int16).numpy().view(np.uint16)
        x = t.numpy()
    a = np.asarray(x)
    key = "b" if a.dtype.kind == "b" else a.dtype.kind + str(a.dtype.itemsize)
    if key not in _FROM_NUMPY:
        raise ValueError("tensor %r: numpy dtype %s has no safetensors dtype" % (name, a.dtype))
    return _FROM_NUMPY[key], a


def _convert(name, dt, a, want):
    if want == dt:
        return dt, a
    if want not in DTYPES:
        raise ValueError("tensor %r: dtype %r is not one of %s"
                         % (name, want, ", ".join(sorted(DTYPES))))
    if want == "BF16":
        if dt not in ("F16", "F32", "F64"):
            raise ValueError("tensor %r: cannot store %s as BF16" % (name, dt))
        return "BF16", _f32_to_bf16(a.astype(np.float32))
    if dt == "BF16":
        a = _bf16_to_f32(a)
    return want, a.astype(DTYPES[want])


def dumps(tensors, metadata=None, dtypes=None):
    """The .safetensors bytes of {name: array or torch tensor}."""
    if not hasattr(tensors, "items"):
        raise TypeError("tensors must be a mapping of names to arrays")
    if metadata is not None:
        if (not isinstance(metadata, dict) or
                not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
            raise ValueError("metadata must be a dict of strings to strings")
    items = []
    for name, x in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ValueError("tensor name %r is empty, not a string or reserved" % (name,))
        dt, a = _as_array(name, x)
        want = dtypes.get(name) if isinstance(dtypes, dict) else dtypes
        if want is not None and (isinstance(dtypes, dict) or dt in ("F16", "BF16", "F32", "F64")):
            dt, a = _convert(name, dt, a, want)
        # (np.asarray keeps 0-d arrays 0-d; ascontiguousarray would not)
        a = np.asarray(a, dtype=DTYPES[dt], order="C")
        items.append((name, dt, a))
    if isinstance(dtypes, dict):
        unknown = sorted(set(dtypes) - {n for n, _, _ in items})
        if unknown:
            raise ValueError("dtypes names tensors that are not given: %s" % ", ".join(unknown))
    items.sort(key=lambda t: (-_ORDER.index(t[1]), t[0]))
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    off = 0
    for name, dt, a in items:
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * (-len(h) % 8)
    return b"".join([struct.pack("<Q", len(h)), h] + [a.tobytes() for _, _, a in items])


def save(tensors, path, metadata=None, dtypes=None):
    """Writes {name: array or torch tensor} to path as .safetensors (atomically:
    a temporary file renamed over path).  metadata: {str: str} for
    "__metadata__"; dtypes: a safetensors dtype per name (or one for every
    floating-point tensor) to store as, e.g. "BF16" or "F16"."""
    data = dumps(tensors, metadata, dtypes)
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
