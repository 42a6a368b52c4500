"""vvd: the Python side of the vvd compute daemon.

    import vvd
    spec, weights = vvd.export(model, (3, 32, 32), "out/vgg")     # torch
    small, result = vvd.compress(model, "fashion-mnist", input_shape=(1, 28, 28),
                                 lambda_ratio=0.05)               # torch + daemon
    model = vvd.load("vvd-data/runs/r-000003")                    # torch
    tensors = vvd.safetensors.load("model.safetensors")           # numpy only
    client = vvd.Client("http://127.0.0.1:8470")                  # standard library

Only numpy is needed to import the package; export, load and compress
import torch when called.
"""

from . import safetensors
from .client import Client, Event
from .errors import ExportError, UnsupportedModuleError, VvdConnectionError, VvdError

__version__ = "0.1.0"
__all__ = ["Client", "Event", "ExportError", "UnsupportedModuleError", "VvdConnectionError",
           "VvdError", "compress", "export", "load", "safetensors", "__version__"]


def export(module, input_shape, path, preprocess=None, check=True):
    """Writes a torch module's architecture spec (JSON) and weights
    (.safetensors, the state_dict names of its layers); returns
    (spec_path, weights_path).

    path: a folder (model.json and model.safetensors in it, as compress runs
    write them) or a prefix ("out/vgg" -> out/vgg.json, out/vgg.safetensors).
    input_shape: (C, H, W) for images, (features,) for vectors.
    preprocess: input preprocessing to record ({"mean", "std", "resize", "crop"}).
    check: rebuild the module from the spec and compare outputs on a random
    batch (ExportError when they differ).

    The module must be an nn.Sequential (nested ones allowed) or have a
    forward that torch.fx traces into a straight chain of nn.Conv2d,
    BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten,
    Linear, Dropout (and torch.flatten, x.view(x.size(0), -1), F.relu, ...);
    anything else raises UnsupportedModuleError or ExportError naming the
    module and its path ("features.3 (nn.GELU) is not supported: ...")."""
    from ._torch import export as _export

    return _export(module, input_shape, path, preprocess=preprocess, check=check)


def load(source, weights=None, client=None):
    """A torch nn.Module (eval mode) from a vvd model.

    source: a run folder (model.json + model.safetensors), a spec path
    (weights: its .safetensors, default the one beside it), a spec dict
    (weights: a path or a dict of tensors), or a run id on a daemon
    ("r-000003", client=vvd.Client(url); the artifacts are downloaded).
    The module is nested nn.Sequential containers whose state_dict names are
    the spec's tensor names (loaded strictly); module.vvd_spec holds the
    spec's input shape and preprocessing."""
    from ._torch import load as _load

    return _load(source, weights=weights, client=client)


def compress(module, data, layers="all_linear", input_shape=None, client=None, **kwargs):
    """Compresses a torch module's linear and conv layers in the daemon;
    returns (smaller_module, result).

    data: "fashion-mnist", or a dict as a compress spec takes it ({"format":
    "npy", "train": {"images", "labels"}, "test": {...}, "max_train": ...});
    local files and numpy arrays in it are uploaded as blobs.
    layers: "all_linear", "all_conv", "all" or a list of layer names (a conv
    layer or a linear layer after flatten deletes whole channels).
    input_shape: (C, H, W) or (features,) (known for a module from vvd.load).
    client: a vvd.Client (default Client(): VVD_SERVER or 127.0.0.1:8470).
    Other keywords go into the spec as they are (lambda_ratio, lambda,
    target_active, refit, solver, tol, sequential, ...), except preprocess
    (recorded in the exported spec), name (the run's name), progress (a
    one-line display on stderr, default True) and timeout (seconds).

    result: the run's result (per layer: neurons kept, lambda, certificate;
    before/after accuracy, parameters, ...) plus "run_id".  A run that does
    not finish raises VvdError (code FAILED / STOPPED / CRASHED, .run)."""
    from ._compress import compress as _compress

    return _compress(module, data, layers=layers, input_shape=input_shape, client=client,
                     **kwargs)
