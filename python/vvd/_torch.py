"""Torch helpers: export an nn.Module to vvd's architecture spec and a
.safetensors state_dict, and build an nn.Module back from them.

Importing this module imports torch; the rest of the package does not.
"""

import collections
import json
import operator
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import safetensors as st
from ._supported import SUPPORTED
from .errors import ExportError, UnsupportedModuleError

__all__ = ["export", "export_spec", "load", "module_from_spec"]

NAME_MAX = 63  # the runtime's layer names (schema/model.schema.json)


def _tname(mod):
    """"nn.GELU" for torch.nn modules, the class's qualified name otherwise."""
    cls = type(mod)
    if cls.__module__.startswith("torch.nn"):
        return "nn." + cls.__name__
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def _unsupported(path, mod, why=None):
    return UnsupportedModuleError(path or "(the module itself)", _tname(mod), why)


# ---- Walking a module into a chain of layers ---------------------------------------
#
# An op is (path, module): path is the state_dict prefix of the module (None
# for a torch function called in forward), module an nn.Module that computes
# the op (a stand-in such as nn.ReLU() for F.relu).  Every op is run on a
# sample batch as it is collected, so that its input and output shapes are
# known and a reshape can be checked to be a flatten.


class _Op:
    __slots__ = ("path", "mod", "what", "x_shape", "y_shape")

    def __init__(self, path, mod, what, x_shape, y_shape):
        self.path, self.mod, self.what = path, mod, what
        self.x_shape, self.y_shape = tuple(x_shape), tuple(y_shape)


def _join(prefix, name):
    return "%s.%s" % (prefix, name) if prefix else name


def _is_torch_leaf(mod):
    m = type(mod).__module__
    return (m.startswith("torch.nn") or m.startswith("torch.ao.nn")) and \
        type(mod) is not nn.Module and not isinstance(mod, nn.Sequential) and \
        "forward" not in vars(mod)


def _walk(mod, prefix, x, ops):
    """Appends the ops of mod applied to x; returns its output."""
    if isinstance(mod, nn.Sequential) and "forward" not in vars(mod) and \
            type(mod).forward is nn.Sequential.forward:
        for name, child in mod.named_children():
            x = _walk(child, _join(prefix, name), x, ops)
        return x
    if _is_torch_leaf(mod):
        y = mod(x)
        if not torch.is_tensor(y):
            raise _unsupported(prefix, mod, "it does not return one tensor")
        ops.append(_Op(prefix, mod, _tname(mod), x.shape, y.shape))
        return y
    return _trace(mod, prefix, x, ops)


class _Wrap(nn.Module):
    """Holds a module whose forward was replaced on the instance, so that
    torch.fx (which traces type(root).forward) follows the instance's."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m.forward(x)


_FUNCS = None


def _functions():
    global _FUNCS
    if _FUNCS is None:
        _FUNCS = {
            F.relu: ("relu", ["inplace"]), torch.relu: ("relu", []),
            torch.relu_: ("relu", []), F.relu_: ("relu", []),
            F.max_pool2d: ("max_pool2d", ["kernel_size", "stride", "padding", "dilation",
                                          "ceil_mode", "return_indices"]),
            F.avg_pool2d: ("avg_pool2d", ["kernel_size", "stride", "padding", "ceil_mode",
                                          "count_include_pad", "divisor_override"]),
            F.adaptive_avg_pool2d: ("adaptive_avg_pool2d", ["output_size"]),
            F.dropout: ("dropout", ["p", "training", "inplace"]),
            torch.flatten: ("flatten", ["start_dim", "end_dim"]),
        }
    return _FUNCS


def _fn_name(target):
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", None) or repr(target)
    if mod.startswith("torch.nn.functional") or mod == "torch._C._nn":
        return "torch.nn.functional." + name
    if mod.startswith("torch"):
        return "torch." + name
    if mod in ("_operator", "operator"):
        return "operator." + name
    return "%s.%s" % (mod, name) if mod else name


class _Reshape(nn.Module):
    """A forward's x.view / reshape / flatten call (checked to be a flatten)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _stand_in(node, args, kwargs, where):
    """The module that computes a torch function or tensor method a forward
    calls on the chain's tensor (args/kwargs without that tensor, shape
    values evaluated), or None for an identity."""
    if node.op == "call_method":
        name = node.target
        if name in ("relu", "relu_"):
            return nn.ReLU(), "Tensor." + name
        if name in ("contiguous",):
            return None, "Tensor." + name
        if name in ("view", "reshape", "flatten"):
            return _Reshape(lambda x: getattr(x, name)(*args, **kwargs)), "Tensor." + name
        raise ExportError("%s: forward calls Tensor.%s, which export cannot map to a layer "
                          "(supported are %s)" % (where, name, SUPPORTED))
    fns = _functions()
    if node.target not in fns:
        raise ExportError("%s: forward calls %s, which export cannot map to a layer "
                          "(supported are %s, and torch.relu, torch.flatten, "
                          "torch.nn.functional.relu, dropout, max_pool2d, avg_pool2d, "
                          "adaptive_avg_pool2d)" % (where, _fn_name(node.target), SUPPORTED))
    kind, names = fns[node.target]
    if len(args) > len(names):
        raise ExportError("%s: too many arguments to %s" % (where, _fn_name(node.target)))
    kw = dict(zip(names, args))
    kw.update(kwargs)
    what = _fn_name(node.target)
    if kind == "relu":
        return nn.ReLU(), what
    if kind == "flatten":
        return _Reshape(lambda x: torch.flatten(x, *args, **kwargs)), what
    if kind == "dropout":
        kw.pop("training", None)
        kw.pop("inplace", None)
        return nn.Dropout(**kw), what
    if kind == "max_pool2d":
        return nn.MaxPool2d(**kw), what
    if kind == "avg_pool2d":
        return nn.AvgPool2d(**kw), what
    return nn.AdaptiveAvgPool2d(**kw), what


def _trace(mod, prefix, x, ops):
    """The ops of a custom module's forward, traced by torch.fx: a straight
    chain of calls on its one input."""
    import torch.fx as fx

    where = "%s (%s)" % (prefix or "the module", _tname(mod))
    root, strip = mod, ""
    if "forward" in vars(mod):  # forward replaced on the instance
        root, strip = _Wrap(mod), "m."
    try:
        gm = fx.symbolic_trace(root)
    except Exception as e:  # torch.fx raises many kinds
        raise ExportError("%s: torch.fx cannot trace its forward (%s: %s); export needs a "
                          "forward that is a straight chain of supported layers (%s)"
                          % (where, type(e).__name__, str(e).splitlines()[0] if str(e) else "",
                             SUPPORTED)) from None
    values = {}      # node -> value (the chain tensor, or a shape value)
    chain = None     # the node holding the chain's current tensor
    seen_input = False
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if seen_input:
                raise ExportError("%s: forward takes more than one input (%s)"
                                  % (where, node.target))
            seen_input = True
            values[node] = x
            chain = node
            continue
        if node.op == "output":
            out = node.args[0]
            if out is not chain:
                raise ExportError("%s: forward does not return the result of its chain of "
                                  "layers (it returns %s)" % (where, out))
            return values[chain]
        if node.op == "get_attr":
            raise ExportError("%s: forward reads the tensor %s directly; export needs layers "
                              "(modules) only" % (where, node.target))
        # Shape values: x.size(...), x.shape, x.shape[0], x.dim().
        if (node.op == "call_method" and node.target in ("size", "dim")) or \
                (node.op == "call_function" and node.target is getattr and
                 node.args[1:] == ("shape",)) or \
                (node.op == "call_function" and node.target is operator.getitem and
                 isinstance(node.args[0], fx.Node) and
                 not torch.is_tensor(values.get(node.args[0]))):
            a = fx.node.map_arg(node.args, lambda n: values[n])
            k = fx.node.map_arg(node.kwargs, lambda n: values[n])
            if node.op == "call_method":
                values[node] = getattr(a[0], node.target)(*a[1:], **k)
            else:
                values[node] = node.target(*a, **k)
            continue
        # A layer: it must take the chain's tensor as its first argument and
        # nothing else that is a tensor of the chain.
        first = node.args[0] if node.args else None
        others = []
        fx.node.map_arg((node.args[1:], node.kwargs), others.append)
        if first is not chain or any(torch.is_tensor(values.get(n)) for n in others):
            what = node.target if node.op == "call_module" else _fn_name(node.target) \
                if node.op == "call_function" else "Tensor." + str(node.target)
            raise ExportError("%s: its forward is not a straight chain of layers: %s does not "
                              "take the output of the layer before it (%s) as its only tensor "
                              "input" % (where, what, chain.name))
        if node.op == "call_module":
            path = node.target[len(strip):] if strip and node.target.startswith(strip) \
                else node.target
            sub = gm.get_submodule(node.target)
            if node.kwargs or len(node.args) != 1:
                raise ExportError("%s: %s is called with more than its input" % (where, path))
            values[node] = _walk(sub, _join(prefix, path), values[chain], ops)
            chain = node
            continue
        if node.op not in ("call_function", "call_method"):
            raise ExportError("%s: unexpected graph node %s (%s)" % (where, node.name, node.op))
        a = fx.node.map_arg(node.args[1:], lambda n: values[n])
        k = fx.node.map_arg(node.kwargs, lambda n: values[n])
        sub, what = _stand_in(node, tuple(a), dict(k), where)
        xin = values[chain]
        y = xin if sub is None else sub(xin)
        if sub is not None:
            ops.append(_Op(None, sub, "%s in the forward of %s" % (what, where), xin.shape,
                           y.shape))
        values[node] = y
        chain = node
    raise ExportError("%s: its traced graph has no output" % where)


# ---- Ops to spec layers --------------------------------------------------------------


def _pair(v, what, path, mod):
    if isinstance(v, int):
        return v
    if isinstance(v, (tuple, list)) and len(v) == 2 and v[0] == v[1]:
        return int(v[0])
    if isinstance(v, (tuple, list)) and len(v) == 1:
        return int(v[0])
    raise _unsupported(path, mod, "%s %r is not square (the runtime has square windows)"
                       % (what, v))


def _runtime_shape(shape):
    """(c, h, w) of a torch activation shape (batch first)."""
    if len(shape) == 4:
        return tuple(shape[1:])
    if len(shape) == 2:
        return (shape[1], 1, 1)
    return None


def _pool_fields(op, path, mod, name, k, s, p):
    c, h, w = _runtime_shape(op.x_shape)
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    if getattr(mod, "ceil_mode", False) and op.y_shape[2:] != (oh, ow):
        raise _unsupported(path, mod, "ceil_mode=True changes its output size here (the "
                           "runtime rounds down)")
    if 2 * p > k:
        raise _unsupported(path, mod, "padding %d is more than half the kernel %d" % (p, k))
    return {"type": name, "kernel_size": k, "stride": s, "padding": p}


def _layer(op):
    """The spec layer of an op (None for an identity)."""
    mod, path = op.mod, op.path
    label = path if path is not None else op.what
    if _runtime_shape(op.x_shape) is None:
        raise ExportError("%s: its input is a %d-D tensor %s; the runtime takes images "
                          "(N x C x H x W) and features (N x F)"
                          % (label, len(op.x_shape), list(op.x_shape)))
    named = isinstance(mod, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))
    if named:
        if not path:
            raise _unsupported(path, mod, "a layer with weights needs a state_dict prefix: "
                               "export a container of it (nn.Sequential(module))")
        if len(path) > NAME_MAX:
            raise _unsupported(path, mod, "its name has %d characters; the runtime allows %d"
                               % (len(path), NAME_MAX))
    if type(mod) is nn.Conv2d:
        if mod.groups != 1:
            raise _unsupported(path, mod, "groups=%d (grouped convolutions)" % mod.groups)
        if tuple(mod.dilation) != (1, 1):
            raise _unsupported(path, mod, "dilation=%s" % (tuple(mod.dilation),))
        k = _pair(mod.kernel_size, "kernel_size", path, mod)
        s = _pair(mod.stride, "stride", path, mod)
        pad = mod.padding
        if pad == "valid":
            pad = 0
        elif pad == "same":
            if k % 2 == 0:
                raise _unsupported(path, mod, "padding='same' with an even kernel pads "
                                   "unevenly")
            pad = (k - 1) // 2
        pad = _pair(pad, "padding", path, mod)
        if pad and mod.padding_mode != "zeros":
            raise _unsupported(path, mod, "padding_mode=%r (only zeros)" % mod.padding_mode)
        return {"type": "conv2d", "name": path, "in_channels": mod.in_channels,
                "out_channels": mod.out_channels, "kernel_size": k, "stride": s,
                "padding": pad, "bias": mod.bias is not None}
    if type(mod) is nn.BatchNorm2d:
        if not mod.affine:
            raise _unsupported(path, mod, "affine=False (the runtime needs weight and bias)")
        if mod.running_mean is None:
            raise _unsupported(path, mod, "track_running_stats=False (the runtime uses "
                               "running statistics)")
        return {"type": "batchnorm2d", "name": path, "num_features": mod.num_features,
                "eps": float(mod.eps)}
    if type(mod) is nn.Linear:
        if len(op.x_shape) != 2:
            raise _unsupported(path, mod, "it is applied to a %d-D tensor %s; flatten before "
                               "it" % (len(op.x_shape), list(op.x_shape)))
        return {"type": "linear", "name": path, "in_features": mod.in_features,
                "out_features": mod.out_features, "bias": mod.bias is not None}
    if type(mod) is nn.ReLU:
        return {"type": "relu"}
    if type(mod) is nn.Dropout:
        if not 0 <= mod.p < 1:
            raise _unsupported(path, mod, "p=%g (the runtime needs 0 <= p < 1)" % mod.p)
        return {"type": "dropout", "p": float(mod.p)}
    if type(mod) is nn.Identity:
        return None
    if type(mod) is nn.MaxPool2d:
        if mod.return_indices:
            raise _unsupported(path, mod, "return_indices=True")
        if _pair(mod.dilation, "dilation", path, mod) != 1:
            raise _unsupported(path, mod, "dilation=%s" % (mod.dilation,))
        k = _pair(mod.kernel_size, "kernel_size", path, mod)
        s = _pair(mod.stride if mod.stride is not None else k, "stride", path, mod)
        p = _pair(mod.padding, "padding", path, mod)
        return _pool_fields(op, path, mod, "maxpool2d", k, s, p)
    if type(mod) is nn.AvgPool2d:
        k = _pair(mod.kernel_size, "kernel_size", path, mod)
        s = _pair(mod.stride if mod.stride is not None else k, "stride", path, mod)
        p = _pair(mod.padding, "padding", path, mod)
        if mod.divisor_override:
            raise _unsupported(path, mod, "divisor_override=%r" % mod.divisor_override)
        if p and not mod.count_include_pad:
            raise _unsupported(path, mod, "count_include_pad=False with padding (the runtime "
                               "divides by the whole window)")
        return _pool_fields(op, path, mod, "avgpool2d", k, s, p)
    if type(mod) is nn.AdaptiveAvgPool2d:
        if len(op.y_shape) != 4:
            raise _unsupported(path, mod, "its output is not N x C x H x W")
        return {"type": "adaptive_avgpool2d", "output_size": [op.y_shape[2], op.y_shape[3]]}
    if type(mod) is nn.Flatten or isinstance(mod, _Reshape):
        n = 1
        for d in op.x_shape[1:]:
            n *= d
        if op.y_shape != (op.x_shape[0], n):
            raise ExportError("%s turns %s into %s, which is not a flatten to (batch, "
                              "features)" % (label, list(op.x_shape), list(op.y_shape)))
        if len(op.x_shape) == 2:
            return None  # already flat
        return {"type": "flatten"}
    raise _unsupported(path, mod)


def _sample(input_shape, dtype, device):
    shape = tuple(int(v) for v in input_shape)
    g = torch.Generator().manual_seed(1234)
    return torch.rand((2,) + shape, generator=g).to(device=device, dtype=dtype)


def _check_input_shape(input_shape):
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    try:
        shape = tuple(int(v) for v in input_shape)
    except TypeError:
        raise ValueError("input_shape must be (C, H, W) or (features,), not %r"
                         % (input_shape,)) from None
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise ValueError("input_shape must be (C, H, W) or (features,) of positive sizes, "
                         "not %r" % (input_shape,))
    return shape


def export_spec(module, input_shape, preprocess=None, check=True):
    """(spec dict, {tensor name: torch tensor}) of module, without writing files."""
    if not isinstance(module, nn.Module):
        raise TypeError("export takes an nn.Module, not %s" % type(module).__name__)
    shape = _check_input_shape(input_shape)
    p0 = next(iter(module.parameters()), None)
    dtype = p0.dtype if p0 is not None and p0.is_floating_point() else torch.float32
    device = p0.device if p0 is not None else torch.device("cpu")
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        ops = []
        x = _sample(shape, dtype, device)
        with torch.no_grad():
            y = _walk(module, "", x, ops)
        layers, owners, seen = [], {}, {}
        for op in ops:
            if op.path is not None and op.path in seen and \
                    isinstance(op.mod, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
                raise ExportError("%s (%s) is applied twice; the runtime needs one layer per "
                                  "set of weights" % (op.path, _tname(op.mod)))
            if op.path is not None:
                seen[op.path] = op
            lay = _layer(op)
            if lay is not None:
                layers.append(lay)
                if "name" in lay:
                    owners[lay["name"]] = op.mod
        if not layers:
            raise ExportError("the module has no layers to export")
        if not torch.is_tensor(y) or y.dim() != 2:
            raise ExportError("the module's output is %s, not N x classes"
                              % (list(y.shape) if torch.is_tensor(y) else type(y).__name__))
        if len(shape) == 1:
            # Vectors are the runtime's 1 x 1 x F images, flattened first (as
            # its built-in mlp): data sets hold them as N x F or N x 1 x F.
            spec_in = [1, 1, shape[0]]
            if layers[0]["type"] != "flatten":
                layers.insert(0, {"type": "flatten"})
        else:
            spec_in = list(shape)
        spec = {"input": spec_in, "layers": layers}
        if preprocess is None:
            # A module made by vvd.load keeps its model's preprocessing.
            preprocess = (getattr(module, "vvd_spec", None) or {}).get("preprocess")
        if preprocess:
            spec["preprocess"] = dict(preprocess)
        sd = module.state_dict()
        tensors = collections.OrderedDict()
        for lay in layers:
            if "name" not in lay:
                continue
            keys = {"conv2d": ["weight", "bias"], "linear": ["weight", "bias"],
                    "batchnorm2d": ["weight", "bias", "running_mean", "running_var",
                                    "num_batches_tracked"]}[lay["type"]]
            for k in keys:
                full = lay["name"] + "." + k
                if full in sd:
                    tensors[full] = sd[full].detach().to("cpu")
                elif k != "num_batches_tracked" and (k != "bias" or lay.get("bias", True)):
                    raise ExportError("%s (%s): the state_dict has no %r"
                                      % (lay["name"], _tname(owners[lay["name"]]), full))
        if check:
            _check_same(module, spec, tensors, shape, dtype, device)
        return spec, tensors
    finally:
        for m, t in modes.items():
            m.train(t)


def _check_same(module, spec, tensors, shape, dtype, device):
    """The module rebuilt from the spec computes what module does."""
    rebuilt = module_from_spec(spec, {k: v.float() if v.is_floating_point() else v
                                      for k, v in tensors.items()})
    x = _sample(shape, torch.float32, "cpu") * 2 - 0.5
    with torch.no_grad():
        want = module(x.to(device=device, dtype=dtype)).float().cpu()
        got = rebuilt(x)
    if got.shape != want.shape:
        raise ExportError("the exported spec gives outputs %s but the module %s"
                          % (list(got.shape), list(want.shape)))
    err = (got - want).abs().max().item()
    scale = max(1.0, want.abs().max().item())
    if not err <= (1e-4 if dtype == torch.float32 else 1e-2) * scale:
        raise ExportError("the exported layers do not compute what the module's forward "
                          "does (max difference %.3g); its forward must apply exactly the "
                          "layers in order" % err)


def _out_paths(path):
    path = os.fspath(path)
    if os.path.isdir(path) or path.endswith(os.sep) or path.endswith("/"):
        os.makedirs(path, exist_ok=True)
        return os.path.join(path, "model.json"), os.path.join(path, "model.safetensors")
    for ext in (".json", ".safetensors"):
        if path.endswith(ext):
            path = path[:-len(ext)]
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    return path + ".json", path + ".safetensors"


def export(module, input_shape, path, preprocess=None, check=True):
    """Writes module's architecture spec (JSON) and weights (.safetensors, the
    state_dict names of its layers) and returns (spec_path, weights_path).

    path: a directory (model.json and model.safetensors in it, as compress
    runs write them) or a prefix ("out/vgg" -> out/vgg.json, out/vgg.safetensors).
    input_shape: (C, H, W) for images, (features,) for vectors.
    preprocess: the input preprocessing to record ({"mean", "std", "resize", "crop"});
    None: a module made by vvd.load keeps its model's (module.vvd_spec).
    check: rebuild the module from the spec and compare its output with
    module's on a random batch (ExportError when they differ).

    The module must be an nn.Sequential (nested ones allowed) or have a
    forward that torch.fx traces into a straight chain of supported layers;
    anything else raises UnsupportedModuleError / ExportError naming the
    module and its path."""
    spec, tensors = export_spec(module, input_shape, preprocess, check)
    spec_path, weights_path = _out_paths(path)
    st.save(tensors, weights_path, metadata={"format": "pt"})
    tmp = spec_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")
    os.replace(tmp, spec_path)
    return spec_path, weights_path


# ---- Specs to modules ------------------------------------------------------------------


def _is_int(s):
    return s.isdigit() and (s == "0" or not s.startswith("0"))


_BASE_NAME = {"relu": "relu", "maxpool2d": "pool", "avgpool2d": "pool",
              "adaptive_avgpool2d": "avgpool", "flatten": "flatten", "dropout": "dropout"}


# Layers that torchvision-style models keep outside their numbered
# containers (VGG and AlexNet: features, avgpool, flatten in forward, classifier).
_OWN_NAME = ("flatten", "adaptive_avgpool2d")


def _assign_paths(layers):
    """A module path for every layer: its name, or for an unnamed layer
    (relu, pools, flatten, dropout) the free index of the numbered container
    around it (features.2 between features.1 and features.3; flatten and
    adaptive pools only in a top-level one), else a top-level name (relu,
    avgpool, flatten, ...)."""
    named = [l.get("name") for l in layers]
    used = set(n for n in named if n)
    prefixes = set()
    for n in used:
        parts = n.split(".")
        for i in range(1, len(parts)):
            prefixes.add(".".join(parts[:i]))
    clash = used & prefixes
    if clash:
        raise ValueError("layer name %r is also the prefix of another layer's name"
                         % sorted(clash)[0])
    taken = used | prefixes
    paths = list(named)

    def split(p):
        head, _, last = p.rpartition(".")
        return head, last

    def free(p):
        return p not in taken and not any(t.startswith(p + ".") for t in taken)

    i = 0
    while i < len(layers):
        if paths[i]:
            i += 1
            continue
        j = i
        while j < len(layers) and not paths[j]:
            j += 1
        run = list(range(i, j))
        # The end of the run: the first indices of the next named layer's container.
        if j < len(layers):
            head, last = split(paths[j])
            if _is_int(last):
                b = int(last)
                k = len(run)
                while k > 0 and b > 0:
                    p = _join(head, str(b - 1))
                    if not free(p) or (head and layers[run[k - 1]]["type"] in _OWN_NAME):
                        break
                    paths[run[k - 1]] = p
                    taken.add(p)
                    b -= 1
                    k -= 1
                run = run[:k]
        # The start of the run: the next indices of the previous layer's container.
        if i > 0 and run:
            head, last = split(paths[i - 1])
            if _is_int(last):
                b = int(last) + 1
                for r in list(run):
                    p = _join(head, str(b))
                    if (head and layers[r]["type"] in _OWN_NAME) or not free(p):
                        break
                    paths[r] = p
                    taken.add(p)
                    run.remove(r)
                    b += 1
        # The rest: top-level names.
        for r in run:
            base = _BASE_NAME.get(layers[r]["type"], layers[r]["type"])
            p, n = base, 1
            while not free(p):
                p, n = "%s_%d" % (base, n), n + 1
            paths[r] = p
            taken.add(p)
        i = j
    return paths


def _make_layer(l, where):
    t = l.get("type")
    try:
        if t == "conv2d":
            return nn.Conv2d(l["in_channels"], l["out_channels"], l["kernel_size"],
                             stride=l.get("stride", 1), padding=l.get("padding", 0),
                             bias=l.get("bias", True))
        if t == "batchnorm2d":
            return nn.BatchNorm2d(l["num_features"], eps=l.get("eps", 1e-5))
        if t == "relu":
            return nn.ReLU()
        if t in ("maxpool2d", "avgpool2d"):
            cls = nn.MaxPool2d if t == "maxpool2d" else nn.AvgPool2d
            return cls(l["kernel_size"], stride=l.get("stride", l["kernel_size"]),
                       padding=l.get("padding", 0))
        if t == "adaptive_avgpool2d":
            o = l["output_size"]
            return nn.AdaptiveAvgPool2d(tuple(o) if isinstance(o, list) else o)
        if t == "flatten":
            return nn.Flatten()
        if t == "linear":
            return nn.Linear(l["in_features"], l["out_features"], bias=l.get("bias", True))
        if t == "dropout":
            return nn.Dropout(l.get("p", 0.5))
    except KeyError as e:
        raise ValueError("%s: a %s layer needs %s" % (where, t, e)) from None
    raise ValueError("%s: unknown layer type %r" % (where, t))


class Chain(nn.Module):
    """A model whose layers are not grouped in consecutive containers: the
    containers hold the layers under their state_dict names, and forward
    applies them in the spec's order."""

    def __init__(self, order):
        super().__init__()
        self._vvd_order = list(order)

    def forward(self, x):
        for p in self._vvd_order:
            x = self.get_submodule(p)(x)
        return x


def module_from_spec(spec, state_dict=None):
    """An nn.Module (eval mode) computing spec's layers, with the spec's
    layer names as its state_dict prefixes; state_dict (name -> tensor or
    numpy array) is loaded strictly when given (num_batches_tracked, which
    the runtime does not keep, is filled in as 0 when missing)."""
    if not isinstance(spec, dict):
        raise ValueError("a model spec is a JSON object, not %s" % type(spec).__name__)
    if "arch" in spec:
        raise ValueError("spec names the built-in architecture %r; vvd.load builds specs with "
                         "a list of layers (model.json of a compress run)" % spec["arch"])
    if "layers" not in spec or "input" not in spec:
        raise ValueError("a model spec needs 'input' and 'layers'")
    layers = spec["layers"]
    if not isinstance(layers, list) or not layers:
        raise ValueError("spec 'layers' must be a non-empty list")
    paths = _assign_paths(layers)
    mods = []
    flat = False  # whether the torch tensor is already N x F
    c, h, w = spec["input"]
    extra = 0
    for i, (l, p) in enumerate(zip(layers, paths)):
        m = _make_layer(l, "layer %d (%s)" % (i, p))
        t = l["type"]
        if t == "linear" and not flat:
            # The runtime feeds a linear layer c*h*w values with h*w == 1.
            mods.append(("_flatten%d" % extra, nn.Flatten()))
            extra += 1
        elif t in ("conv2d", "batchnorm2d", "maxpool2d", "avgpool2d",
                   "adaptive_avgpool2d") and flat:
            mods.append(("_unflatten%d" % extra, nn.Unflatten(1, (c, h, w))))
            extra += 1
        mods.append((p, m))
        if t in ("flatten", "linear"):
            flat = True
            if t == "linear":
                c, h, w = l["out_features"], 1, 1
            else:
                c, h, w = c * h * w, 1, 1
        elif t in ("conv2d", "maxpool2d", "avgpool2d"):
            k, s, pad = l["kernel_size"], l.get("stride", None), l.get("padding", 0)
            s = s or (1 if t == "conv2d" else k)
            c = l["out_channels"] if t == "conv2d" else c
            h, w = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
            flat = False
        elif t == "adaptive_avgpool2d":
            o = l["output_size"]
            h, w = (o, o) if isinstance(o, int) else tuple(o)
            flat = False
        elif t == "batchnorm2d":
            flat = False
    model = _nest(mods)
    model.vvd_spec = {k: v for k, v in spec.items() if k != "layers"}
    if state_dict is not None:
        _load_state(model, state_dict, layers)
    return model.eval()


def _nest(mods):
    """Nested nn.Sequential containers when every container's layers are
    consecutive, else a Chain."""
    tree = collections.OrderedDict()
    for p, m in mods:
        node = tree
        parts = p.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, collections.OrderedDict())
            if not isinstance(node, dict):
                raise ValueError("layer name %r is also the prefix of another layer's name" % p)
        node[parts[-1]] = m

    def order(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from order(v, _join(prefix, k))
            else:
                yield _join(prefix, k)

    def build(node, cls):
        out = cls() if cls is not nn.Sequential else None
        items = [(k, build(v, cls) if isinstance(v, dict) else v) for k, v in node.items()]
        if cls is nn.Sequential:
            return nn.Sequential(collections.OrderedDict(items))
        for k, v in items:
            out.add_module(k, v)
        return out

    want = [p for p, _ in mods]
    if list(order(tree, "")) == want:
        return build(tree, nn.Sequential)
    chain = Chain(want)
    for k, v in tree.items():
        chain.add_module(k, build(v, nn.Module) if isinstance(v, dict) else v)
    return chain


def _load_state(model, state_dict, layers):
    sd = collections.OrderedDict()
    for k, v in state_dict.items():
        sd[k] = v if torch.is_tensor(v) else torch.from_numpy(np.array(v))
    want = model.state_dict()
    for k, v in want.items():
        if k.endswith(".num_batches_tracked") and k not in sd:
            sd[k] = torch.zeros((), dtype=torch.long)
    missing = [k for k in want if k not in sd]
    extra = [k for k in sd if k not in want]
    if missing or extra:
        raise ValueError("the weights do not fit the spec: %s%s%s" % (
            "missing " + ", ".join(missing) if missing else "",
            "; " if missing and extra else "",
            "unexpected " + ", ".join(extra) if extra else ""))
    for k, v in want.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise ValueError("tensor %r has shape %s but the spec needs %s"
                             % (k, list(sd[k].shape), list(v.shape)))
        if v.is_floating_point():
            sd[k] = sd[k].to(v.dtype)
    model.load_state_dict(sd, strict=True)


def _read_spec(path):
    with open(path) as f:
        try:
            return json.load(f)
        except ValueError as e:
            raise ValueError("%s: not valid JSON: %s" % (path, e)) from None


def load(source, weights=None, client=None):
    """An nn.Module (eval mode) from a vvd model: source is a run folder
    (model.json + model.safetensors), a spec path (weights: its .safetensors;
    default the file beside it with the same stem, or model.safetensors), a
    spec dict (weights: a path or a dict of tensors), or a run id on a daemon
    ("r-000003", with client=vvd.Client(url); the artifacts are downloaded).
    Its state_dict names are the spec's tensor names; module.vvd_spec holds
    the spec's input shape and preprocessing."""
    if isinstance(source, (tuple, list)) and len(source) == 2 and weights is None:
        source, weights = source
    if isinstance(source, dict):
        spec = source
    else:
        src = os.fspath(source)
        if os.path.isdir(src):
            spec_path = os.path.join(src, "model.json")
            if weights is None:
                weights = os.path.join(src, "model.safetensors")
            if not os.path.exists(spec_path):
                raise FileNotFoundError("%s has no model.json (a compress run's folder holds "
                                        "model.json and model.safetensors)" % src)
        elif os.path.isfile(src):
            spec_path = src
            if weights is None:
                stem = os.path.splitext(src)[0] + ".safetensors"
                beside = os.path.join(os.path.dirname(src), "model.safetensors")
                weights = stem if os.path.exists(stem) else beside
        elif client is not None or _looks_like_run(src):
            return _load_run(src, client)
        else:
            raise FileNotFoundError("%s: no such file, folder or run id" % src)
        spec = _read_spec(spec_path)
    if weights is None:
        raise ValueError("load(spec dict) needs weights: a .safetensors path or a dict")
    if isinstance(weights, dict):
        tensors = weights
    else:
        if not os.path.exists(os.fspath(weights)):
            raise FileNotFoundError("%s: no such weights file" % os.fspath(weights))
        tensors = st.load(weights)
    return module_from_spec(spec, tensors)


def _looks_like_run(s):
    import re

    return re.fullmatch(r"r-[0-9]+", s) is not None


def _load_run(run_id, client):
    from .client import Client

    client = client or Client()
    run = client.runs.get(run_id)
    names = {a["name"] for a in run.get("artifacts") or []}
    if "model.json" not in names or "model.safetensors" not in names:
        raise ValueError("run %s (%s, %s) has no model.json and model.safetensors artifacts "
                         "(compress and train runs write them when they finish)"
                         % (run_id, run.get("kind"), run.get("state")))
    spec = json.loads(client.runs.download(run_id, "model.json").decode("utf-8"))
    tensors = st.loads(client.runs.download(run_id, "model.safetensors"))
    model = module_from_spec(spec, tensors)
    model.vvd_run = run_id
    return model
