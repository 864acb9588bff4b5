"""Property-based tests (hypothesis) of the public API, with a bounded example budget.

- the realism index of every radial prior, its log and its gradient, against mpmath at 40
  digits (and scipy where scipy's log-survival function is finite) for dimensions 1 to 4096
  and radii 0 and 1e-300 to 8e307, for the CPU kernels and the float64 reference alike;
- the path energy and both its gradients against the plain torch formula of eq. (3), with
  points of zero density (log ri = -inf) and segments that do not move;
- every array argument of every public function in every memory layout (transposed,
  negative strides, zero strides, read-only), numpy and torch: the same numbers as the
  C-contiguous copy.

The examples are drawn from one seed per run, printed in the pytest header; set
FASTGEO_HYPOTHESIS_SEED=<seed> to replay a run. FASTGEO_HYPOTHESIS_EXAMPLES scales the
budget (CI keeps the default).
"""
import math
import os

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st
from scipy import stats

import fastgeo
from fastgeo.priors import (Cauchy, GammaNorm, Gaussian, StandardNormal, StudentT, UniformBall, UniformBox,
                            semicircle)
from test_path_energy import plain_energy_and_grads

SEED = int(os.environ["FASTGEO_HYPOTHESIS_SEED"])  # drawn by conftest.py and printed in the header
EXAMPLES = int(os.environ.get("FASTGEO_HYPOTHESIS_EXAMPLES") or 40)
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=False, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DIMS = [1, 2, 3, 4, 7, 16, 64, 512, 4096]


# -- the realism index of radial priors against mpmath ----------------------------------------

def mp_radial(prior, r):
    """(log ri, d log ri / dr) of ``prior`` at whitened radius r, to 40 digits (log p - log Q
    subtracts two numbers near -r^2: they get 2 log10(r) digits more)."""
    with mpmath.workdps(50 + 2 * max(0, int(math.log10(max(r, 1.0))))):
        r = mpmath.mpf(r)
        s = r * r
        d = mpmath.mpf(prior.dim)
        if isinstance(prior, Gaussian):
            a, x, dx = d / 2, s / 2, r
        elif isinstance(prior, GammaNorm):
            a, x, dx = mpmath.mpf(prior.shape), r / prior.scale, 1 / mpmath.mpf(prior.scale)
        else:
            if r == 0:
                return 0.0, 0.0
            nu = mpmath.mpf(prior.df)
            a, b = nu / 2, d / 2
            w, w1 = nu / (nu + s), s / (nu + s)  # w and 1 - w, each without cancellation
            i_w = mpmath.betainc(a, b, 0, w, regularized=True)
            # near 1, log I_w from the other tail: log1p(-I_{1-w}(b, a)) keeps its digits
            if i_w < 0.5:
                log_i = mpmath.log(i_w)
            else:
                log_i = mpmath.log1p(-mpmath.betainc(b, a, 0, w1, regularized=True))
            dens = w ** (a - 1) * w1 ** (b - 1) / mpmath.beta(a, b)
            return float(log_i), float(dens * (-2 * r * nu / (nu + s) ** 2) / i_w)
        if x == 0:
            return 0.0, 0.0
        q = mpmath.gammainc(a, x, mpmath.inf, regularized=True)
        # near 1, log Q from the lower tail: log1p(-P) keeps its digits
        log_q = mpmath.log(q) if q < 0.5 else mpmath.log1p(-mpmath.gammainc(a, 0, x, regularized=True))
        log_pdf = (a - 1) * mpmath.log(x) - x - mpmath.loggamma(a)
        return float(log_q), float(-mpmath.exp(log_pdf - log_q) * dx)


def scipy_log_sf(prior, r):
    with np.errstate(all="ignore"):
        if isinstance(prior, Gaussian):
            return stats.chi2(prior.dim).logsf(r * r)
        if isinstance(prior, GammaNorm):
            return stats.gamma(prior.shape, scale=prior.scale).logsf(r)
        return stats.f(prior.dim, prior.df).logsf(r * r / prior.dim)


PRIORS = {
    "normal": lambda d, p: StandardNormal(d),
    "gaussian": lambda d, p: Gaussian(np.zeros(d), 0.25 + p),  # isotropic: the whitened radius is |z| / sd
    "gamma": lambda d, p: GammaNorm(d, 0.25 + 0.75 * p, 0.5 + 2 * p),  # shape <= D: a decreasing density
    "student": lambda d, p: StudentT(d, 0.5 + 8 * p),
    "cauchy": lambda d, p: Cauchy(d),
}


def whitening(prior):
    """The scalar W of the isotropic priors above (1 where there is none)."""
    w = prior.index().whiten
    return 1.0 if w is None else float(w[0])


def whitened_radius(prior, z):
    """|W z| of one point, exact to rounding (in mpmath)."""
    with mpmath.workdps(40):
        return mpmath.sqrt(mpmath.fsum(mpmath.mpf(float(v)) ** 2 for v in z)) * whitening(prior)


@seed(SEED)
@PROPERTY
@given(name=st.sampled_from(sorted(PRIORS)), dim=st.sampled_from(DIMS), param=st.floats(0.0, 1.0),
       log_radius=st.one_of(st.just(None), st.floats(-300.0, 307.9)), direction=st.integers(0, 2**32 - 1),
       backend=st.sampled_from(["cpu", "reference"]))
def test_radial_index_matches_mpmath(name, dim, param, log_radius, direction, backend):
    # below |y| = 1e-145 only the gamma radius keeps its digits; the other families count such
    # points as the origin (docs/MATH.md 1.1, "Where float64 ends")
    assume(name == "gamma" or log_radius is None or log_radius > -140.0)
    prior = PRIORS[name](dim, param)
    u = np.random.default_rng(direction).standard_normal(dim)
    u /= np.linalg.norm(u)
    radius = 0.0 if log_radius is None else 10.0 ** log_radius
    z = (radius * u)[None]
    r = float(whitened_radius(prior, z[0]))
    want, want_dr = mp_radial(prior, r)
    got, grad = fastgeo.log_ri_and_grad(z, prior, backend=backend)
    context = f"{prior!r}, |W z| = {r:.6g}, {backend}"
    if math.isinf(want):
        assert got[0] == -math.inf, context
    else:
        assert abs(got[0] - want) <= 1e-11 * abs(want) + 1e-300, (context, got[0], want)
    sp = scipy_log_sf(prior, r)
    if np.isfinite(sp) and abs(sp) < 1e4:  # where scipy's own value is finite and its digits good
        # (scipy takes the log of sf: near sf = 1 that has only absolute precision)
        assert abs(got[0] - sp) <= 1e-9 * abs(sp) + 1e-15, (context, got[0], sp)
    # the gradient: (d log ri / dr) W^T W z / r, with |W z| = r
    assert np.all(np.isfinite(grad)), context
    if r > 0:
        scale = whitening(prior)
        want_grad = want_dr * ((z[0] * scale) / r) * scale
        err = np.max(np.abs(grad[0] - want_grad))
        assert err <= 1e-10 * np.max(np.abs(want_grad)) + 1e-300, (context, grad[0][:3], want_grad[:3])
    # ri itself is exp(log ri), in [0, 1]
    assert fastgeo.ri(z, prior, backend=backend)[0] == pytest.approx(math.exp(want), rel=1e-10, abs=1e-300)


# -- the path energy against the plain torch formula --------------------------------------------

@st.composite
def paths(draw):
    """(G (B, K+1, N), l (B, K+1)) with -inf entries and repeated points mixed in."""
    b, k1, n = draw(st.integers(1, 4)), draw(st.integers(2, 9)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    G = rng.standard_normal((b, k1, n)) * 10.0 ** rng.uniform(-3, 3, (b, 1, 1))
    l = -(10.0 ** rng.uniform(-6, 3, (b, k1)))
    for _ in range(draw(st.integers(0, 3))):  # a segment that does not move
        bi, i = rng.integers(b), rng.integers(k1 - 1)
        G[bi, i + 1] = G[bi, i]
    for _ in range(draw(st.integers(0, 3))):  # a point of zero density
        l[rng.integers(b), rng.integers(k1)] = -math.inf
    return G, l


def plain_path_energy(G, l, alpha):
    """E from eq. (3) by the textbook formula in float64, with the limits of the edge cases:
    a segment that does not move costs 0; one that moves between two points of zero density
    costs +inf."""
    log_a = math.log(alpha) + np.logaddexp(l[:, :-1], l[:, 1:]) - math.log(2.0)
    d = np.sum((G[:, 1:] - G[:, :-1]) ** 2, axis=2)
    with np.errstate(invalid="ignore", over="ignore"):
        terms = np.where(d == 0, 0.0, log_a * log_a * d)
    return terms.sum(axis=1)


@seed(SEED)
@PROPERTY
@given(path=paths(), alpha=st.floats(1e-6, 0.999), library=st.sampled_from(["numpy", "torch"]),
       backend=st.sampled_from(["cpu", "reference"]))
def test_path_energy_matches_the_plain_formula(path, alpha, library, backend):
    G, l = path
    args = (torch.from_numpy(G), torch.from_numpy(l)) if library == "torch" else (G, l)
    E, dG, dl = (np.asarray(x) for x in fastgeo.energy_and_grads(*args, alpha, backend=backend))
    want = plain_path_energy(G, l, alpha)
    assert not np.isnan(E).any() and not np.isnan(dG).any() and not np.isnan(dl).any()
    np.testing.assert_allclose(E, want, rtol=1e-11, atol=0)
    # gradients against torch autograd of the plain formula, on the paths where every
    # log ri is finite (autograd has no limits to take there)
    finite = np.isfinite(l).all(axis=1)
    if finite.any():
        moving = np.sum((G[finite, 1:] - G[finite, :-1]) ** 2, axis=2) > 0
        if moving.all():  # autograd of |x|^2 at 0 is fine, but logaddexp' at a 0 * inf is not
            _, pdG, pdl, scale = plain_energy_and_grads(G[finite], l[finite], alpha)
            assert np.all(np.abs(dG[finite] - pdG) <= 1e-10 * scale + 1e-300)
            np.testing.assert_allclose(dl[finite], pdl, rtol=1e-9, atol=1e-300)
    # a path moving between two zero-density points has infinite energy, and no other has
    both_zero = np.isneginf(l[:, :-1]) & np.isneginf(l[:, 1:])
    moves = np.sum((G[:, 1:] - G[:, :-1]) ** 2, axis=2) > 0
    assert np.array_equal(np.isinf(E), (both_zero & moves).any(axis=1))


# -- memory layouts ---------------------------------------------------------------------------

def layouts_numpy(a, rng):
    """(name, an array equal to a in another layout) for every layout numpy can make."""
    out = [("contiguous", np.ascontiguousarray(a))]
    t = np.asfortranarray(a)
    out.append(("Fortran order", t))
    flipped = np.ascontiguousarray(a[::-1])[::-1]  # equal to a, negative stride along axis 0
    out.append(("negative stride", flipped))
    if a.ndim >= 1:
        rev = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
        out.append(("negative last stride", rev))
    padded = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    padded[..., ::2] = a
    out.append(("every other column", padded[..., ::2]))
    ro = np.array(a)
    ro.flags.writeable = False
    out.append(("read-only", ro))
    if a.shape[0] >= 1:  # zero stride: every row the same
        row = np.broadcast_to(a[:1], a.shape)
        out.append(("zero stride (broadcast first row)", row))
    return out


def layouts_torch(a):
    t = torch.from_numpy(np.ascontiguousarray(a))
    out = [("contiguous", t), ("transposed twice", t.transpose(0, -1).contiguous().transpose(0, -1))]
    padded = torch.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=t.dtype)
    padded[..., ::2] = t
    out.append(("every other column", padded[..., ::2]))
    out.append(("zero stride (expand first row)", t[:1].expand(t.shape)))
    return out


def same(a, b, context):
    a, b = (np.asarray(x.detach() if isinstance(x, torch.Tensor) else x, dtype=np.float64) for x in (a, b))
    assert a.shape == b.shape, context
    both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    with np.errstate(invalid="ignore"):  # inf - inf where both are -inf: both_inf covers it
        ok = both_inf | (np.abs(a - b) <= 1e-12 * np.abs(b) + 1e-300)
    assert ok.all(), (context, a[~ok][:3], b[~ok][:3])


def point_functions():
    prior = StandardNormal(5)
    mix = semicircle(5, kde_samples=500)
    box = UniformBox(-np.ones(5), np.ones(5))
    return [
        ("ri reference", lambda z: fastgeo.ri(z, prior, backend="reference")),
        ("log_ri box", lambda z: fastgeo.log_ri(z, box)),
        ("log_ri ball", lambda z: fastgeo.log_ri(z, UniformBall(5, 2.0))),
        ("log_ri cauchy", lambda z: fastgeo.log_ri(z, Cauchy(5))),
        ("ri", lambda z: fastgeo.ri(z, prior)),
        ("log_ri", lambda z: fastgeo.log_ri(z, prior)),
        ("grad_log_ri", lambda z: fastgeo.grad_log_ri(z, prior)),
        ("log_ri_and_grad", lambda z: fastgeo.log_ri_and_grad(z, prior)[1]),
        ("log_ri semicircle", lambda z: fastgeo.log_ri(z, mix)),
        ("grad_log_ri semicircle", lambda z: fastgeo.grad_log_ri(z, mix)),
        ("log_ri gaussian", lambda z: fastgeo.log_ri(z, Gaussian(np.arange(5.0), np.linspace(0.5, 2, 5)))),
        ("log_prob", lambda z: prior.log_prob(z)),
        ("log_prob semicircle", lambda z: mix.log_prob(z)),
    ]


@seed(SEED)
@PROPERTY
@given(m=st.integers(1, 6), data_seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_point_functions_take_every_layout(m, data_seed, dtype):
    z = (np.random.default_rng(data_seed).standard_normal((m, 5)) * 2).astype(dtype)
    for name, fn in point_functions():
        want = fn(np.ascontiguousarray(z))
        for layout, arr in layouts_numpy(z, None):
            got = fn(arr)
            assert np.asarray(got).dtype == dtype, (name, layout)
            same(got, want if "broadcast" not in layout else fn(np.ascontiguousarray(arr)), (name, layout))
        for layout, t in layouts_torch(z):
            got = fn(t)
            assert isinstance(got, torch.Tensor), (name, layout)
            same(got, want if "expand" not in layout else fn(np.ascontiguousarray(t.numpy())), (name, layout))


def path_functions():
    return [
        ("path_energy", lambda G, l: fastgeo.path_energy(G, l, 0.3)),
        ("energy_and_grads E", lambda G, l: fastgeo.energy_and_grads(G, l, 0.3)[0]),
        ("energy_and_grads dG", lambda G, l: fastgeo.energy_and_grads(G, l, 0.3)[1]),
        ("energy_and_grads dl", lambda G, l: fastgeo.energy_and_grads(G, l, 0.3)[2]),
        ("path_log_index", lambda G, l: fastgeo.path_log_index(G, l)),
    ]


@seed(SEED)
@PROPERTY
@given(b=st.integers(1, 4), k1=st.integers(2, 7), n=st.integers(1, 12), data_seed=st.integers(0, 2**32 - 1))
def test_path_functions_take_every_layout(b, k1, n, data_seed):
    rng = np.random.default_rng(data_seed)
    G = rng.standard_normal((b, k1, n))
    l = -rng.uniform(0.01, 20.0, (b, k1))
    for name, fn in path_functions():
        want = fn(G, l)
        for which in ("decoded", "log_ri"):
            arrays = layouts_numpy(G if which == "decoded" else l, None)
            for layout, arr in arrays:
                args = (arr, l) if which == "decoded" else (G, arr)
                ref = want if "broadcast" not in layout else fn(*(np.ascontiguousarray(x) for x in args))
                same(fn(*args), ref, (name, which, layout))
            for layout, t in layouts_torch(G if which == "decoded" else l):
                other = torch.from_numpy(l if which == "decoded" else G)
                args = (t, other) if which == "decoded" else (other, t)
                ref = want if "expand" not in layout else fn(*(np.ascontiguousarray(x.numpy()) for x in args))
                same(fn(*args), ref, (name, which, layout))


@seed(SEED)
@settings(max_examples=max(4, EXAMPLES // 8), deadline=None, derandomize=False, print_blob=True)
@given(data_seed=st.integers(0, 2**32 - 1), method=st.sampled_from(["lbfgs", "linear"]))
def test_interpolation_takes_every_endpoint_layout(data_seed, method):
    """Endpoints in any layout give the same paths as contiguous ones (the solver once crashed
    on column-major endpoints)."""
    rng = np.random.default_rng(data_seed)
    torch.manual_seed(int(rng.integers(2**31)))
    G = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 5)).double().eval()
    prior = StandardNormal(4)
    z = rng.standard_normal((2, 3, 4))

    def run(z0, z1):
        if method == "linear":
            return fastgeo.linear_path(G, z0, z1, prior, n_points=5).path
        return fastgeo.interpolate(G, z0, z1, prior, n_points=5, max_iter=4).path

    want = run(z[0], z[1])
    for (layout, a0), (_, a1) in zip(layouts_numpy(z[0], None), layouts_numpy(z[1], None)):
        same(run(a0, a1), want if "broadcast" not in layout else run(np.ascontiguousarray(a0),
                                                                      np.ascontiguousarray(a1)), layout)
    for (layout, t0), (_, t1) in zip(layouts_torch(z[0]), layouts_torch(z[1])):
        ref = want if "expand" not in layout else run(t0.contiguous().numpy(), t1.contiguous().numpy())
        same(run(t0, t1), ref, layout)
    # the issue's own case: a transposed (column-major) torch tensor
    col = torch.from_numpy(np.ascontiguousarray(z[0].T)).t()
    same(run(col, torch.from_numpy(z[1])), want, "column-major torch")
