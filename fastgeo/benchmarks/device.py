"""Where a benchmark's inputs live and how to wait for the work there."""
from __future__ import annotations

import importlib

import numpy as np


class Device:
    """Where inputs live and how to wait for work there (CPU: numpy; GPU: torch or CuPy)."""

    def __init__(self, name):
        self.name = name
        self.lib = None
        if name == "cuda":
            try:
                import torch

                if torch.cuda.is_available():
                    self.lib = "torch"
            except ImportError:
                pass
            if self.lib is None:
                importlib.import_module("cupy")  # raises if there is no GPU library at all
                self.lib = "cupy"

    def put(self, host):
        if self.name == "cpu":
            return host
        if self.lib == "torch":
            import torch

            return torch.as_tensor(host, device="cuda")
        import cupy

        return cupy.asarray(host)

    def sync(self):
        if self.name == "cpu":
            return
        if self.lib == "torch":
            import torch

            torch.cuda.synchronize()
        else:
            import cupy

            cupy.cuda.get_current_stream().synchronize()

    def copier(self, x):
        """A call copying x into a preallocated array (read + write of x's bytes); it returns
        the copy, so that the copy can be checked like any other benchmarked result."""
        if self.name == "cpu":
            out = np.empty_like(x)

            def copy():
                np.copyto(out, x)
                return out

            return copy
        if self.lib == "torch":
            out = x.clone()
            return lambda: out.copy_(x)
        import cupy

        out = cupy.empty_like(x)

        def copy():
            cupy.copyto(out, x)
            return out

        return copy


def available_devices():
    from .. import backends

    return ["cpu"] + (["cuda"] if backends.availability()["cuda"] is None else [])


def backends_for(device):
    from .. import backends

    avail = backends.availability()
    names = ("cuda",) if device == "cuda" else ("cpu", "reference")
    return [n for n in names if avail[n] is None]
