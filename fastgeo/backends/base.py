"""The operations every backend provides, on 2-D arrays of its own array library.

Callers (the public functions) have already validated shapes, dtypes and parameters,
flattened batch dimensions to a leading axis, and will restore the caller's array type.
Backends compute in float64 and return arrays of the input's dtype; they report NaN/inf
in inputs by raising ValueError, never by returning NaN.
"""
from __future__ import annotations

WHATS = ("log_ri", "ri", "log_density")


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here (missing package or device)."""


class Backend:
    name = "base"
    devices = ("cpu",)  # "cpu" and/or "cuda"

    def check_device(self, kind) -> None:
        on = "cuda" if kind.is_cuda else "cpu"
        if on not in self.devices:
            if on == "cuda":
                raise ValueError(
                    f"the {self.name!r} backend runs on the CPU but the input is a {kind.describe()} "
                    "array; use backend='cuda' or 'auto', or move the input with .cpu()"
                )
            raise ValueError(
                f"the {self.name!r} backend runs on the GPU but the input is a {kind.describe()} "
                "array; move it to the GPU or use backend='cpu'"
            )

    # -- realism index of radial priors (MATH.md 1.1) ---------------------------------
    def radial(self, y, family, dim, p0, p1, log_alpha, what, need_grad):
        """For each row y_i with s_i = |y_i|^2: log ri (+ log_alpha), ri, or log density.

        Returns (out of shape (M,), grad of shape (M, D) or None): grad is d out / d y for
        what == "log_ri" (it does not depend on log_alpha).
        """
        raise NotImplementedError

    # -- realism index of a box (MATH.md 1.2) -------------------------------------------
    def box(self, z, low, high, log_alpha, what):
        """log_alpha inside [low, high] and -inf outside (what="log_ri"), or its exp."""
        raise NotImplementedError

    # -- KDE of the log-density (MATH.md 1.3) -------------------------------------------
    def kde(self, x, kde, what, need_grad):
        """G_W (what="cdf"), log G_W ("log_cdf"), g_W ("pdf") or log g_W ("log_pdf") at x.

        x is 1-D float. With need_grad, also returns d out / dx.
        """
        raise NotImplementedError
