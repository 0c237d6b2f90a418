"""The small object model under every layer: Parameter, Module, and the no_grad switch.

A Module owns named Parameters (an array and its accumulated gradient) and child Modules, and
offers what torch users expect: parameters(), named_parameters(), state_dict(), load_state_dict(),
zero_grad(), train()/eval(). There is no autograd: each module's ``backward`` takes the gradient of
its output and returns that of its input, adding the parameter gradients into ``Parameter.grad``.

Names follow torch: a layer's own parameters by their torch names ("weight_ih_l0"), a container's
children prefixed by their key ("0.weight_ih_l0"), so torch state_dicts map one to one.
"""
import contextlib
import threading

import numpy as np

_grad_state = threading.local()


def is_grad_enabled():
    """False inside ``with rnnfast.no_grad():`` on this thread."""
    return getattr(_grad_state, "enabled", True)


@contextlib.contextmanager
def no_grad():
    """Inference mode for this thread: forward passes keep nothing for backward.

    >>> import rnnfast as rf
    >>> with rf.no_grad():
    ...     assert not rf.is_grad_enabled()
    """
    previous = is_grad_enabled()
    _grad_state.enabled = False
    try:
        yield
    finally:
        _grad_state.enabled = previous


def owned(arr, source):
    """``arr`` (already converted from the caller's ``source``) as an array the caller cannot
    change behind a module's back: copied if it shares memory with a writeable ``source``.

    A module keeps its inputs for backward; if the caller edits that array in place between forward
    and backward, the gradients would be silently wrong. Read-only sources (such as the outputs of
    other modules, see :func:`read_only`) need no copy.
    """
    if (isinstance(source, np.ndarray) and source.flags.writeable
            and np.may_share_memory(arr, source)):
        return arr.copy()
    return arr


def read_only(arr):
    """A read-only view of an array a module also keeps for backward, so that an in-place edit by
    the caller raises (as torch does) instead of silently corrupting the gradients."""
    view = arr.view()
    view.flags.writeable = False
    return view


class Parameter:
    """A trainable array and the gradient accumulated for it (same shape and dtype)."""

    __slots__ = ("data", "grad")

    def __init__(self, data):
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base of every layer and model. Subclasses register parameters with ``add_parameter`` and
    children with ``add_module``, and implement ``forward`` (and ``backward`` where trainable)."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        self.training = True

    # -- registration ---------------------------------------------------------------------------
    def add_parameter(self, name, data):
        self._parameters[name] = Parameter(data)
        return self._parameters[name]

    def add_module(self, name, module):
        if not isinstance(module, Module):
            raise TypeError(f"module {name!r} must be an rnnfast Module, got {type(module).__name__}")
        self._modules[str(name)] = module
        return module

    def __getattr__(self, name):
        # only called when normal lookup fails: expose parameter arrays by their torch names
        params = self.__dict__.get("_parameters", {})
        if name in params:
            return params[name].data
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    # -- traversal ------------------------------------------------------------------------------
    def named_parameters(self, prefix=""):
        """[(name, Parameter)] for this module and its children, in registration order."""
        out = [(prefix + n, p) for n, p in self._parameters.items()]
        for key, child in self._modules.items():
            out += child.named_parameters(prefix + key + ".")
        return out

    def parameters(self):
        """Every Parameter (array + grad) an optimizer should update."""
        return [p for _, p in self.named_parameters()]

    def modules(self):
        out = [self]
        for child in self._modules.values():
            out += child.modules()
        return out

    @property
    def grads(self):
        """{name: gradient array}, accumulated by backward until zero_grad()."""
        return {n: p.grad for n, p in self.named_parameters()}

    def zero_grad(self):
        for p in self.parameters():
            p.grad[...] = 0

    def train(self, mode=True):
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self):
        """{name: copy of the array}, with torch's names and shapes."""
        return {n: p.data.copy() for n, p in self.named_parameters()}

    def load_state_dict(self, state):
        """Copy arrays in by name, cast to each parameter's dtype. Every key must match exactly:
        a missing or unexpected key raises KeyError, a wrong shape ValueError, naming the key."""
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if missing:
            raise KeyError(f"state_dict is missing key(s) {missing}")
        if unexpected:
            raise KeyError(f"state_dict has unexpected key(s) {unexpected}")
        new = {}
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.shape != p.data.shape:
                raise ValueError(f"state_dict[{name!r}] has shape {value.shape}, "
                                 f"expected {p.data.shape}")
            if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
                raise TypeError(f"state_dict[{name!r}] must be numeric, got dtype {value.dtype}")
            new[name] = value.astype(p.data.dtype)
        for name, value in new.items():  # all checked first: a failed load changes nothing
            params[name].data[...] = value

    # -- calling --------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def get_config(self):
        """The constructor arguments that rebuild this module (used by rnnfast.save)."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its configuration")
