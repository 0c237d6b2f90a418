"""Saving and loading whole models: one .npz holding the architecture (JSON) and the weights.

``save`` writes to a temporary file in the target's directory, flushes it to disk and renames it
over the target (``os.replace``), so a crash or Ctrl-C mid-write leaves either the old file or the
new one, never half of one. ``load`` rebuilds the model from the architecture and loads the
weights; a file that is not an rnnfast model, is truncated or corrupted (zip CRC), or whose weights
do not fit its architecture (or the model you load into) raises :class:`ModelFileError`, a
ValueError saying what is wrong.

The file is a plain NumPy archive, readable without rnnfast: ``np.load(path)["weights/0.weight"]``;
the architecture is the JSON string under "__rnnfast__". Weight names are the model's state_dict
names, which are torch's, so the arrays load into the matching torch module unchanged. Nothing is
pickled: loading a file never runs code from it.

>>> import os, tempfile, numpy as np, rnnfast as rf
>>> model = rf.Sequential(rf.Linear(3, 4), rf.Tanh(), rf.Linear(4, 1))
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> rf.save(model, path)
>>> again = rf.load(path)
>>> bool(np.array_equal(again(np.ones((2, 3))), model(np.ones((2, 3)))))
True
"""
import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

from ._module import Module
from .models import build, describe

__all__ = ["save", "load", "ModelFileError"]

FORMAT = "rnnfast-model"
VERSION = 1
META_KEY = "__rnnfast__"
PREFIX = "weights/"


class ModelFileError(ValueError):
    """A model file that cannot be loaded: not rnnfast's, truncated, corrupted or mismatched."""


def _json_default(value):
    if isinstance(value, np.dtype):
        return {"__dtype__": value.name}
    if isinstance(value, type) and issubclass(value, np.generic):
        return {"__dtype__": np.dtype(value).name}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store a {type(value).__name__} ({value!r}) in a model's configuration")


def _json_hook(obj):
    if set(obj) == {"__dtype__"}:
        return np.dtype(obj["__dtype__"])
    return obj


def save(model, path):
    """Write ``model`` (architecture and weights) to ``path`` atomically.

    ``path`` is used as given (no suffix is added); ".npz" is the convention. Every module in the
    model must describe itself with ``get_config()`` (all of rnnfast's do).

    >>> import os, tempfile, rnnfast as rf
    >>> rf.save(rf.Linear(2, 2), os.path.join(tempfile.mkdtemp(), "linear.npz"))
    """
    if not isinstance(model, Module):
        raise TypeError(f"save expects an rnnfast Module, got {type(model).__name__}")
    state = model.state_dict()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": describe(model),
        "parameters": {name: {"shape": list(a.shape), "dtype": a.dtype.name}
                       for name, a in state.items()},
    }
    try:
        from . import __version__
        meta["rnnfast_version"] = __version__
    except ImportError:  # pragma: no cover - partial import during package init
        pass
    arrays = {META_KEY: np.array(json.dumps(meta, default=_json_default))}
    arrays.update({PREFIX + name: a for name, a in state.items()})

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        try:  # mkstemp makes the file private; give it the mode a plain open() would
            mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o666 & ~_umask()
            os.chmod(tmp, mode)
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask():
    """The process's umask, read without changing it where Linux reports it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def _read(path):
    """(meta dict, {name: array}) from a model file, or ModelFileError."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path} is a single .npy array, not an rnnfast model file")
        with archive:
            if META_KEY not in archive.files:
                raise ModelFileError(f"{path} is a NumPy archive but not an rnnfast model file "
                                     f"(it has no {META_KEY!r} entry)")
            meta = json.loads(str(archive[META_KEY][()]), object_hook=_json_hook)
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ModelFileError(f"{path} is not an rnnfast model file")
            if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
                raise ModelFileError(f"{path} has model-file version {meta.get('version')!r}; this "
                                     f"rnnfast reads version {VERSION} and older: upgrade rnnfast")
            listed = meta.get("parameters")
            if not isinstance(listed, dict) or "model" not in meta:
                raise ModelFileError(f"{path}: the model description is incomplete")
            stored = {f[len(PREFIX):] for f in archive.files if f.startswith(PREFIX)}
            if stored != set(listed):
                missing, extra = sorted(set(listed) - stored), sorted(stored - set(listed))
                raise ModelFileError(f"{path}: the weights do not match the file's own list "
                                     f"(missing {missing}, unexpected {extra}); the file is "
                                     "damaged")
            weights = {}
            for name, info in listed.items():
                a = archive[PREFIX + name]
                if list(a.shape) != list(info["shape"]) or a.dtype.name != info["dtype"]:
                    raise ModelFileError(f"{path}: weight {name!r} is {a.dtype} {a.shape}, the "
                                         f"file lists {info['dtype']} {tuple(info['shape'])}; "
                                         "the file is damaged")
                weights[name] = a
    except (FileNotFoundError, IsADirectoryError, PermissionError, ModelFileError):
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, TypeError,
            UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path} is corrupted or truncated and cannot be read as an rnnfast "
                             f"model ({type(exc).__name__}: {exc})") from exc
    return meta, weights


def load(path, model=None):
    """Read a model written by :func:`save`.

    With ``model=None`` the architecture stored in the file is rebuilt and returned; pass a model
    to load the weights into it instead (its parameter names and shapes must match the file's).

    >>> import os, tempfile, rnnfast as rf
    >>> path = os.path.join(tempfile.mkdtemp(), "m.npz")
    >>> rf.save(rf.Sequential(rf.Linear(2, 3)), path)
    >>> rf.load(path)[0].weight.shape
    (3, 2)
    """
    path = os.fspath(path)
    meta, weights = _read(path)
    if model is None:
        try:
            model = build(meta["model"])
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelFileError(f"{path}: cannot rebuild the stored architecture "
                                 f"({type(exc).__name__}: {exc})") from exc
        where = "its stored architecture"
    else:
        if not isinstance(model, Module):
            raise TypeError(f"model must be an rnnfast Module, got {type(model).__name__}")
        where = f"the given {type(model).__name__}"
    try:
        model.load_state_dict(weights)
    except (KeyError, ValueError, TypeError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        raise ModelFileError(f"{path}: the stored weights do not fit {where}: {message}") from exc
    return model
