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

    # -- energy of a path, eq. (3), and its gradients (MATH.md 3) -----------------------
    def path_energy(self, G3, l, log_alpha, need_grads):
        """E = sum_i w_i d_i of each path and, with need_grads, dE/dG; dE/dl always.

        G3: decoded outputs (B, K+1, N), float32 or float64, any strides; l: log ri (B, K+1)
        float64, no NaN and no +inf (the caller checks); K+1 >= 2; log_alpha = log alpha < 0.
        With ``log a_i = log_alpha + logaddexp(l_i, l_{i+1}) - log 2``, ``w_i = (log a_i)^2``,
        ``d_i = |G_{i+1} - G_i|^2``::

            dE/dG_j = 2 w_{j-1} (G_j - G_{j-1}) - 2 w_j (G_{j+1} - G_j)
            dE/dl_j = sum_{i in {j-1, j}} 2 log(a_i) d_i exp(l_j - logaddexp(l_i, l_{i+1}))

        Returns (E (B,) in G3's dtype, dE/dG (B, K+1, N) C-contiguous in G3's dtype or None,
        dE/dl (B, K+1) float64). dE/dl costs O(B K) once the d_i are known, so it is always
        returned. Edge semantics (d_i = 0, l = -inf, overflowing weights) are those of
        :mod:`fastgeo.kernels.path`. Raises ValueError if G3 holds NaN or inf, or if a squared
        difference overflows float64.
        """
        raise NotImplementedError

    def path_log_index(self, G3, l):
        """log ri(path) ~ sum_i (logaddexp(l_i, l_{i+1}) - log 2) |G_{i+1} - G_i| (MATH.md 2).

        Same inputs as :meth:`path_energy`; returns (B,) in G3's dtype; a segment with
        d_i = 0 contributes 0, one between two points of l = -inf that moves gives -inf.
        """
        raise NotImplementedError
