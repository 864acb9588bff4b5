"""float64 numpy/scipy reference: plain formulas, no tricks; what every kernel is tested against.

Survival functions come from ``scipy.stats`` where scipy keeps them finite and their
hazards exact; in the tails, where ``scipy.stats.*.logsf`` returns -inf (the log of an
underflowed sf) or the hazard exp(log pdf - log sf) loses digits to two large logs, and
where |y|^2 overflows float64, the reference evaluates the same functions with mpmath at
30 digits from the radius |y| (computed by scaling).
The KDE is the naive O(n) sum of MATH.md 1.3 with ``scipy.special.log_ndtr`` and
``logsumexp``. The path energy (MATH.md 3) is eq. (3) on whole float64 arrays, with the
edge cases of :mod:`fastgeo.kernels.path` (d_i = 0, l = -inf, huge weights) spelled out by
``np.where``.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
from scipy import special, stats

from .._arrays import check_finite, check_not_nan
from .base import Backend
from ..kernels import families as R
from .._specs import from_radius_rows, radii


def unavailable_reason():
    return None


def make():
    return ReferenceBackend()


#: rows whose log sf or log pdf exceeds this in magnitude take their hazard from mpmath:
#: exp(log pdf - log sf) carries about |log pdf| * 1e-16 of relative error (4.7e-7 at
#: |z| = 1e5 for a standard normal), which a reference cannot afford
MP_HAZARD_ABOVE = 100.0


def _log_sf_and_dlog(family, s, r, dim, p0, p1):
    """log ri and d log ri / dr at squared radii s and radii r (float64; s may overflow to inf
    where r is finite). scipy in the bulk; mpmath at 30 digits in the tails, where scipy's
    logsf underflows to -inf or its hazard exp(log pdf - log sf) loses precision."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        dist = None
        # the survival function's argument x and dx/dr
        if family == R.CHI2:
            dist, x, dx = stats.chi2(dim), s, 2.0 * r
        elif family == R.CHI2_ERF:
            u = np.sqrt(2.0) * (np.sqrt(dim - 0.5) - r)
            log_sf = special.log_ndtr(u)
            log_pdf = stats.norm.logpdf(u)
            dx = np.sqrt(2.0)
        elif family == R.GAMMA_RADIUS:
            dist, x, dx = stats.gamma(p0, scale=p1), r, 1.0
        elif family == R.F_RATIO:
            dist, x, dx = stats.f(dim, p0), s / dim, 2.0 * r / dim
        elif family == R.BALL:
            log_sf = np.where(s <= p0 * p0, 0.0, -np.inf)
            return log_sf, np.zeros_like(s)
        else:
            raise ValueError(f"unknown radial family {family}")
        if dist is not None:
            log_sf, log_pdf = np.array(dist.logsf(x), dtype=np.float64), dist.logpdf(x)
            # near sf = 1 the log of sf has only absolute precision: log1p(-cdf) keeps it relative
            near_one = log_sf > -math.log(2.0)
            log_sf[near_one] = np.log1p(-np.asarray(dist.cdf(x), dtype=np.float64)[near_one])
        log_sf = np.array(log_sf, dtype=np.float64)
        # d log ri / dr = -(pdf / sf)(x) dx/dr; 0 at the origin, and for a row whose s underflowed
        # too, except for the gamma radius, which keeps its digits there (kernels/radial.py:
        # from_radius)
        at_origin = (r == 0) | ((s == 0) & (family != R.GAMMA_RADIUS))
        dlog = np.where(~at_origin & np.isfinite(log_sf), -np.exp(log_pdf - log_sf) * dx, 0.0)
        tail = ~at_origin & ~(np.isfinite(s) & np.isfinite(log_sf) & (np.abs(log_sf) <= MP_HAZARD_ABOVE)
                           & (np.abs(log_pdf) <= MP_HAZARD_ABOVE))
    for i in np.flatnonzero(tail):
        mp_log_sf, dlog[i] = _mp_log_sf_and_dlog(family, float(r[i]), dim, p0, p1)
        if not (np.isfinite(s[i]) and np.isfinite(log_sf[i])):  # scipy's log sf is exact where finite
            log_sf[i] = mp_log_sf
    return log_sf, dlog


def _mp_log_sf_and_dlog(family, r, dim, p0, p1):
    """(log ri, d log ri / dr) at radius r, to 30 digits (any r: s = r^2 is formed in mpmath).

    The hazard exp(log p - log Q) subtracts two numbers near -x: they are formed with
    log10(x) more digits than the 30 the result keeps."""
    if r == math.inf:  # |y| beyond the largest double: nothing left to represent (MATH.md 1.1)
        return -math.inf, 0.0
    with mpmath.workdps(30 + 2 * max(0, int(math.log10(max(r, 1.0)))) + 10):
        r = mpmath.mpf(r)
        s = r * r
        if family in (R.CHI2, R.GAMMA_RADIUS):
            if family == R.CHI2:
                a, x, dx = mpmath.mpf(dim) / 2, s / 2, r
            else:
                a, x, dx = mpmath.mpf(p0), r / p1, 1 / mpmath.mpf(p1)
            q = mpmath.gammainc(a, x, mpmath.inf, regularized=True)
            log_q = mpmath.log(q) if q > 0 else -mpmath.inf
            log_p = (a - 1) * mpmath.log(x) - x - mpmath.loggamma(a)
            return float(log_q), float(-mpmath.exp(log_p - log_q) * dx)
        if family == R.CHI2_ERF:
            u = mpmath.sqrt(2) * (mpmath.sqrt(mpmath.mpf(dim) - 0.5) - r)
            if u > -1e8:
                cdf = mpmath.ncdf(u)
                return float(mpmath.log(cdf)), float(-mpmath.npdf(u) / cdf * mpmath.sqrt(2))
            # mpmath's erfc overflows there: Phi(u) = phi(u) / (-u) (1 - 1/u^2 + 3/u^4 - 15/u^6 ...),
            # whose next term is below 1e-48 of the first
            ratio = (1 - 1 / u**2 + 3 / u**4 - 15 / u**6) / (-u)  # Phi / phi
            log_cdf = -u * u / 2 - mpmath.log(2 * mpmath.pi) / 2 + mpmath.log(ratio)
            return float(log_cdf), float(-mpmath.sqrt(2) / ratio)
        # F_RATIO: ri = I_w(nu/2, D/2), w = nu / (nu + s), dw/dr = -2 r nu / (nu + s)^2
        a, b = mpmath.mpf(p0) / 2, mpmath.mpf(dim) / 2
        w, w1 = p0 / (p0 + s), s / (p0 + s)  # w and 1 - w, each without cancellation
        i_w = mpmath.betainc(a, b, 0, w, regularized=True)
        density = w ** (a - 1) * w1 ** (b - 1) / mpmath.beta(a, b)
        return float(mpmath.log(i_w)), float(density * (-2 * r * p0 / (p0 + s) ** 2) / i_w)


def _mp_log_density(family, r, dim, p0, p1):
    """log f of the standard member at radius r, at 30 digits (rows whose r^2 overflows)."""
    with mpmath.workdps(30):
        r, dim = mpmath.mpf(r), mpmath.mpf(dim)
        s = r * r
        if family in (R.CHI2, R.CHI2_ERF):
            return float(-s / 2 - dim / 2 * mpmath.log(2 * mpmath.pi))
        log_sphere = mpmath.log(2) + dim / 2 * mpmath.log(mpmath.pi) - mpmath.loggamma(dim / 2)
        if family == R.GAMMA_RADIUS:
            return float((p0 - dim) * mpmath.log(r) - r / p1 - mpmath.loggamma(p0) - p0 * mpmath.log(p1)
                         - log_sphere)
        if family == R.F_RATIO:
            return float(mpmath.loggamma((p0 + dim) / 2) - mpmath.loggamma(mpmath.mpf(p0) / 2)
                         - dim / 2 * mpmath.log(p0 * mpmath.pi) - (p0 + dim) / 2 * mpmath.log1p(s / p0))
        return -math.inf


def _log_density(family, s, dim, p0, p1):
    """log f of the standard member of a radial family at squared radius s (numpy)."""
    with np.errstate(divide="ignore"):
        if family in (R.CHI2, R.CHI2_ERF):
            return -0.5 * s - 0.5 * dim * np.log(2 * np.pi)
        log_sphere = np.log(2.0) + 0.5 * dim * np.log(np.pi) - special.gammaln(0.5 * dim)
        if family == R.GAMMA_RADIUS:
            r = np.sqrt(s)
            return stats.gamma.logpdf(r, p0, scale=p1) - (dim - 1) * np.log(r) - log_sphere
        if family == R.F_RATIO:
            return (special.gammaln(0.5 * (p0 + dim)) - special.gammaln(0.5 * p0)
                    - 0.5 * dim * np.log(p0 * np.pi) - 0.5 * (p0 + dim) * np.log1p(s / p0))
        log_vol = 0.5 * dim * np.log(np.pi) + dim * np.log(p0) - special.gammaln(0.5 * dim + 1)
        return np.where(s <= p0 * p0, -log_vol, -np.inf)


def _segments(G3, l, log_alpha):
    """float64 differences G_{i+1} - G_i, d_i, logaddexp(l_i, l_{i+1}) and log a_i."""
    check_finite(G3, "decoded")
    G = np.asarray(G3, dtype=np.float64)
    diff = G[:, 1:] - G[:, :-1]
    with np.errstate(over="ignore"):
        d = np.einsum("bkn,bkn->bk", diff, diff)
    if not np.isfinite(d).all():
        raise ValueError("decoded: a squared difference |G_{i+1} - G_i|^2 overflows float64")
    lse = np.logaddexp(l[:, :-1], l[:, 1:])
    return diff, d, lse, log_alpha + lse - math.log(2.0)


def _path_grad_G(diff, log_a):
    """dE/dG_j = 2 w_{j-1} dprev - 2 w_j dnext, formed so that no weight overflows (MATH.md 3).

    With u = |log a| and, per point, U = max(u_{j-1}, u_j) over the finite ones:
    2 U (U (r_{j-1} dprev - r_j dnext)), r = (u / U)^2 -- the plain formula, rescaled.
    Where a neighbouring weight is infinite (both ends of the segment at l = -inf), the
    result is the limit as the infinite weights grow together: +-inf by the sign of
    [w_{j-1} = inf] dprev - [w_j = inf] dnext, or the finite terms when that is 0.
    """
    b, k, n = diff.shape
    zero_diff = np.zeros((b, 1, n))
    dprev = np.concatenate([zero_diff, diff], axis=1)  # G_j - G_{j-1}; 0 before the first point
    dnext = np.concatenate([diff, zero_diff], axis=1)  # G_{j+1} - G_j; 0 after the last point
    u = np.abs(log_a)
    inf_seg = np.isinf(u)
    u = np.where(inf_seg, 0.0, u)
    zero_seg = np.zeros((b, 1))
    u_prev = np.concatenate([zero_seg, u], axis=1)[:, :, None]
    u_next = np.concatenate([u, zero_seg], axis=1)[:, :, None]
    U = np.maximum(u_prev, u_next)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        r_prev = np.where(U > 0, (u_prev / U) ** 2, 0.0)
        r_next = np.where(U > 0, (u_next / U) ** 2, 0.0)
        inner = r_prev * dprev - r_next * dnext
        finite_part = np.where(inner == 0, 0.0, (2 * U) * (U * inner))
    inf_prev = np.concatenate([zero_seg, inf_seg], axis=1)[:, :, None]
    inf_next = np.concatenate([inf_seg, zero_seg], axis=1)[:, :, None]
    inf_part = inf_prev * dprev - inf_next * dnext
    return np.where(inf_part != 0, np.copysign(np.inf, inf_part), finite_part)


def _path_grad_l(l, d, lse, log_a):
    """dE/dl_j = sum_{i in {j-1, j}} 2 log(a_i) d_i exp(l_j - lse_i).

    The share exp(l_j - lse_i) is 1/2 when both ends are -inf; a term is 0 when d_i or the
    share is 0 (so -inf * 0 never appears).
    """
    def term(l_end):
        with np.errstate(invalid="ignore", over="ignore"):
            share = np.where(np.isneginf(lse), 0.5, np.exp(l_end - lse))
            return np.where((d == 0) | (share == 0), 0.0, 2 * log_a * (d * share))

    dl = np.zeros_like(l)
    dl[:, :-1] += term(l[:, :-1])
    dl[:, 1:] += term(l[:, 1:])
    return dl


class ReferenceBackend(Backend):
    name = "reference"
    devices = ("cpu",)

    def radial(self, y, family, dim, p0, p1, log_alpha, what, need_grad):
        check_finite(y, "z")
        y64 = np.asarray(y, dtype=np.float64)
        s, r = radii(y64)  # r by scaling where s over- or underflows
        if what == "log_density":
            out = np.asarray(_log_density(family, s, dim, p0, p1), dtype=np.float64)
            for i in np.flatnonzero(from_radius_rows(family, s, r)):
                out[i] = _mp_log_density(family, float(r[i]), dim, p0, p1)
            return out.astype(y.dtype), None
        log_sf, dlog = _log_sf_and_dlog(family, s, r, dim, p0, p1)
        out = log_sf + log_alpha
        if what == "ri":
            out = np.exp(out)
        grad = None
        if need_grad:  # (d log ri / dr) y / r, and 0 at r = 0 (symmetry)
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                grad = np.where(r[:, None] > 0, dlog[:, None] * (y64 / r[:, None]), 0.0).astype(y.dtype)
        return out.astype(y.dtype), grad

    def box(self, z, low, high, log_alpha, what):
        check_finite(z, "z")
        inside = np.all((z >= low) & (z <= high), axis=-1)
        out = np.where(inside, log_alpha, -np.inf)
        if what == "ri":
            out = np.exp(out)
        return out.astype(z.dtype)

    def kde(self, x, kde, what, need_grad):
        check_not_nan(x, "x")
        x64 = np.asarray(x, dtype=np.float64)
        l, h, n = kde.samples, kde.bandwidth, kde.n
        log_cdf = np.empty_like(x64)
        log_pdf = np.empty_like(x64)
        chunk = max(1, 2_000_000 // max(n, 1))
        with np.errstate(invalid="ignore"):  # x = +-inf: u = +-inf, handled below
            for start in range(0, x64.size, chunk):
                u = (x64[start:start + chunk, None] - l[None, :]) / h
                log_cdf[start:start + chunk] = special.logsumexp(special.log_ndtr(u), axis=1) - np.log(n)
                log_pdf[start:start + chunk] = (
                    special.logsumexp(-0.5 * u * u, axis=1) - 0.5 * np.log(2 * np.pi) - np.log(n * h)
                )
        finite = np.isfinite(x64)
        with np.errstate(over="ignore", invalid="ignore"):
            hazard = np.where(finite, np.exp(log_pdf - log_cdf), 0.0)  # d log G / dx
        out = {"cdf": np.exp(log_cdf), "log_cdf": log_cdf,
               "pdf": np.exp(log_pdf), "log_pdf": log_pdf}[what]
        deriv = None
        if need_grad:
            if what == "log_cdf":
                deriv = hazard
            elif what == "cdf":
                deriv = np.exp(log_pdf)
            else:
                # (log g)' = -sum u_i phi(u_i) / (h sum phi(u_i)), the weights scaled by the largest
                with np.errstate(invalid="ignore"):
                    u = (x64[:, None] - l[None, :]) / h
                    a = -0.5 * u * u
                    w = np.exp(a - a.max(axis=1, keepdims=True))
                    dlog = -np.sum(u * w, axis=1) / (np.sum(w, axis=1) * h)
                deriv = np.where(finite, dlog if what == "log_pdf" else np.exp(log_pdf) * dlog, 0.0)
        out = out.astype(x.dtype)
        return (out, None if deriv is None else deriv.astype(x.dtype))

    # -- path energy, eq. (3) (MATH.md 3) -------------------------------------------------
    def path_energy(self, G3, l, log_alpha, need_grads):
        diff, d, lse, log_a = _segments(G3, l, log_alpha)
        with np.errstate(over="ignore", invalid="ignore"):
            energy = np.sum(np.where(d == 0, 0.0, log_a * (log_a * d)), axis=1)  # w_i d_i, 0 if d_i = 0
            grad_G = _path_grad_G(diff, log_a).astype(G3.dtype) if need_grads else None
            energy = energy.astype(G3.dtype)
        return energy, grad_G, _path_grad_l(l, d, lse, log_a)

    def path_energy_ends(self, G0, Gfree, GK, l, log_alpha, need_grads):
        """The base class's definition on float64 copies: E and the gradients are rounded to
        the input's dtype only at the end (E stays float64)."""
        def f64(a):
            return np.asarray(a, dtype=np.float64)

        energy, grad, dl, log_a = super().path_energy_ends(f64(G0), f64(Gfree), f64(GK), l, log_alpha, need_grads)
        if grad is not None:
            with np.errstate(over="ignore"):  # beyond float32's range is inf in float32
                grad = grad.astype(Gfree.dtype, copy=False)
        return energy, grad, dl, log_a

    def path_log_index(self, G3, l):
        _, d, lse, _ = _segments(G3, l, 0.0)
        with np.errstate(invalid="ignore"):
            out = np.sum(np.where(d == 0, 0.0, (lse - math.log(2.0)) * np.sqrt(d)), axis=1)
        return out.astype(G3.dtype)
