"""fastgeo.special against mpmath (40 digits, from the exact double inputs) on grids that reach
both tails, float32 and float64, broadcasting of every argument shape, array types, torch
autograd (gradcheck, and the gradient against mpmath's -pdf/S), and the bad-input errors.

Tolerances are relative errors of log S, 1e-13, plus the floor that tests/test_special.py
explains where log S = log1p(-P) is tiny (4 eps |log|log S||); gradients 1e-12.
"""
import itertools
import math
import subprocess
import sys

import mpmath as mp
import numpy as np
import pytest
from scipy import stats

from test_special import mp_log_beta_i, mp_log_gamma_q, near_one_allowance

import fastgeo
import fastgeo.special as S

mp.mp.dps = 40
RTOL = 1e-13
GRAD_RTOL = 1e-12


def rel(got, ref):
    ref = float(ref)
    return abs(got - ref) / abs(ref) if ref != 0 else abs(got)


def check_value(got, ref, where):
    tol = RTOL + near_one_allowance(float(ref))
    assert abs(got - float(ref)) <= tol * abs(float(ref)) + 1e-300, (where, got, float(ref))


def check_grad(got, ref_log_pdf, ref_log_sf, where):
    """got against d/dx log S = -exp(log pdf - log S) in mpmath."""
    ref = -mp.exp(ref_log_pdf - ref_log_sf)
    if abs(ref) > 1e-290:
        assert rel(got, ref) <= GRAD_RTOL, (where, got, float(ref))
    else:
        assert abs(got) <= 1e-280, (where, got)


def with_grad(fn, args, xi):
    """(value, d/dx value) of fastgeo.special's fn through torch autograd, float64."""
    import torch

    args = [torch.tensor(float(a), dtype=torch.float64, requires_grad=(i == xi)) for i, a in enumerate(args)]
    out = fn(*args)
    out.backward()
    return float(out.detach()), float(args[xi].grad)


def gamma_grid(rng):
    a = np.concatenate([[0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 7.0, 19.0, 20.0, 21.0, 50.0, 256.0, 2048.0, 5e4],
                        np.exp(rng.uniform(np.log(0.05), np.log(1e5), 6))])
    for ai in a:
        lam = np.concatenate([np.logspace(-10, 4, 15), 1 + np.linspace(-8, 8, 5) / math.sqrt(ai),
                              np.exp(rng.uniform(np.log(1e-10), np.log(1e4), 3))])
        for x in ai * lam[lam > 0]:
            yield float(ai), float(x)


def mp_log_gamma_pdf(a, x):
    a, x = mp.mpf(a), mp.mpf(x)
    return (a - 1) * mp.log(x) - x - mp.loggamma(a)


def test_gamma_family_against_mpmath(rng):
    """log Q(a, t) through chi2_logsf (t = x/2), gamma_logsf (scale 4: exact) and log_gammaincc,
    with d/dx against mpmath; a from 0.05 to 1e5, x/a from 1e-10 to 1e4."""
    import torch

    for a, t in gamma_grid(rng):
        ref = mp_log_gamma_q(a, t)
        lpdf = mp_log_gamma_pdf(a, t)
        got = S.log_gammaincc(np.float64(a), np.float64(t))
        check_value(got, ref, ("log_gammaincc", a, t))
        assert S.chi2_logsf(np.array(2 * t), 2 * a) == got
        assert S.gamma_logsf(np.array(4 * t), a, 4.0) == got
        v, g = with_grad(S.log_gammaincc, (a, t), 1)
        assert v == got
        check_grad(g, lpdf, ref, ("log_gammaincc", a, t))
        # chain rule for the scaled ones: d/dx log Q(a, x/s) = Q'/s
        assert with_grad(S.chi2_logsf, (2 * t, 2 * a), 0)[1] == g * 0.5
        assert with_grad(S.gamma_logsf, (4 * t, a, 4.0), 0)[1] == g * 0.25
    del torch


def mp_f(x, dfn, dfd):
    """(log S, log pdf) of F(dfn, dfd) at x, exact rational w = dfd/(dfd + dfn x)."""
    with mp.workdps(60):
        x, dfn, dfd = mp.mpf(x), mp.mpf(dfn), mp.mpf(dfd)
        den = dfd + dfn * x
        log_sf = mp_log_beta_i(dfd / 2, dfn / 2, dfd / den, dfn * x / den)
        log_pdf = (dfn / 2 * mp.log(dfn * x) + dfd / 2 * mp.log(dfd) - (dfn + dfd) / 2 * mp.log(den)
                   - mp.log(x) - mp.log(mp.beta(dfn / 2, dfd / 2)))
        return log_sf, log_pdf


def test_f_logsf_against_mpmath(rng):
    dfns = [0.3, 1.0, 2.0, 3.0, 10.0, 100.0, 1024.0, float(np.exp(rng.uniform(np.log(0.2), np.log(2000))))]
    dfds = [0.5, 1.0, 2.0, 5.0, 30.0, 512.0, 4096.0, float(np.exp(rng.uniform(np.log(0.2), np.log(5000))))]
    for dfn, dfd in itertools.product(dfns, dfds):
        for x in np.concatenate([np.logspace(-8, 8, 9), np.exp(rng.uniform(np.log(1e-8), np.log(1e8), 2))]):
            ref, lpdf = mp_f(x, dfn, dfd)
            v, g = with_grad(S.f_logsf, (x, dfn, dfd), 0)
            check_value(v, ref, ("f_logsf", x, dfn, dfd))
            check_grad(g, lpdf, ref, ("f_logsf", x, dfn, dfd))


def test_log_betainc_upper_against_mpmath(rng):
    a_s = [0.2, 1.0, 2.5, 10.0, 100.0, 2000.0, float(np.exp(rng.uniform(np.log(0.2), np.log(2000))))]
    b_s = [0.3, 1.0, 3.0, 50.0, 1000.0, float(np.exp(rng.uniform(np.log(0.2), np.log(2000))))]
    u = np.concatenate([np.logspace(-12, -0.31, 6), rng.uniform(0, 1, 2)])
    for a, b in itertools.product(a_s, b_s):
        for x in np.concatenate([u, 1 - u]):
            with mp.workdps(60):
                xm = mp.mpf(x)
                ref = mp_log_beta_i(mp.mpf(b), mp.mpf(a), 1 - xm, xm)
                lpdf = (a - 1) * mp.log(xm) + (b - 1) * mp.log1p(-xm) - mp.log(mp.beta(a, b))
            v, g = with_grad(S.log_betainc_upper, (a, b, x), 2)
            check_value(v, ref, ("log_betainc_upper", a, b, x))
            check_grad(g, lpdf, ref, ("log_betainc_upper", a, b, x))
    assert S.log_betaincc is S.log_betainc_upper


def test_finite_where_scipy_logsf_is_minus_inf():
    assert stats.chi2.logsf(51200, 512) == -np.inf
    got = S.chi2_logsf(51200.0, 512)
    assert abs(got + 24173.3634) < 1e-4
    check_value(got, mp_log_gamma_q(256, 25600), "chi2(51200, 512)")
    assert stats.f.logsf(1e6, 3, 400) == -np.inf
    ref, _ = mp_f(1e6, 3.0, 400.0)
    check_value(S.f_logsf(1e6, 3, 400), ref, "F(1e6; 3, 400)")


def test_edges_and_support():
    assert S.chi2_logsf(-1.0, 3) == 0.0 and S.chi2_logsf(0.0, 3) == 0.0
    assert S.chi2_logsf(np.inf, 3) == -np.inf and S.chi2_logsf(-np.inf, 3) == 0.0
    assert S.f_logsf(-2.0, 3, 4) == 0.0 and S.f_logsf(np.inf, 3, 4) == -np.inf
    assert S.log_gammaincc(2.0, 0.0) == 0.0 and S.log_gammaincc(2.0, np.inf) == -np.inf
    assert S.log_betainc_upper(2.0, 3.0, 0.0) == 0.0 and S.log_betainc_upper(2.0, 3.0, 1.0) == -np.inf
    # derivatives at the edges: -pdf(0) (inf below shape 1, the density's value at shape 1)
    assert with_grad(S.chi2_logsf, (-1.0, 3.0), 0)[1] == 0.0
    assert with_grad(S.chi2_logsf, (0.0, 1.0), 0)[1] == -np.inf
    assert with_grad(S.chi2_logsf, (0.0, 2.0), 0)[1] == -0.5
    assert with_grad(S.chi2_logsf, (np.inf, 2.0), 0)[1] == -0.5
    assert with_grad(S.f_logsf, (0.0, 2.0, 7.0), 0)[1] == -1.0
    assert with_grad(S.f_logsf, (0.0, 3.0, 7.0), 0)[1] == 0.0
    assert with_grad(S.log_betainc_upper, (1.0, 3.0, 0.0), 2)[1] == pytest.approx(-3.0, rel=1e-15)
    assert with_grad(S.log_betainc_upper, (0.5, 3.0, 0.0), 2)[1] == -np.inf
    np.testing.assert_allclose(S.chi2_sf(np.array([0.5, 3.0, 40.0]), 4), stats.chi2.sf([0.5, 3.0, 40.0], 4),
                               rtol=1e-14)


# -- broadcasting, dtypes, array types --------------------------------------------------------

CASES = [  # (function, valid values per argument, index of x)
    (S.chi2_logsf, ([0.3, 2.0, 9.0, 60.0], [0.5, 3.0, 40.0]), 0),
    (S.gamma_logsf, ([0.3, 2.0, 9.0, 60.0], [0.5, 3.0, 40.0], [0.5, 2.0]), 0),
    (S.log_gammaincc, ([0.5, 3.0, 40.0], [0.3, 2.0, 9.0, 60.0]), 1),
    (S.f_logsf, ([0.3, 2.0, 9.0, 60.0], [0.5, 3.0, 40.0], [1.0, 7.0]), 0),
    (S.log_betainc_upper, ([0.5, 3.0, 40.0], [1.0, 7.0], [0.1, 0.5, 0.97]), 2),
]
SHAPES = [(), (3,), (2, 1), (2, 3), (1, 1, 3)]


def filled(rng, values, shape):
    return rng.choice(np.asarray(values), size=shape) if shape else np.float64(rng.choice(values))


@pytest.mark.parametrize("fn,values,xi", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_broadcasting_of_every_argument_shape(rng, fn, values, xi):
    scalar = np.vectorize(lambda *a: float(fn(*[float(v) for v in a])))
    for shapes in itertools.product(SHAPES, repeat=len(values)):
        args = [filled(rng, v, s) for v, s in zip(values, shapes)]
        got = fn(*args)
        expected = scalar(*args)
        assert np.shape(got) == np.broadcast_shapes(*shapes)
        np.testing.assert_array_equal(got, expected)
        if all(s == () for s in shapes):
            assert isinstance(got, np.float64)
        else:
            assert got.dtype == np.float64
    # Python numbers mix with arrays and do not set the dtype
    x32 = np.asarray(filled(rng, values[xi], (2, 3)), dtype=np.float32)
    args = [float(v[0]) for v in values]
    args[xi] = x32
    assert fn(*args).dtype == np.float32


@pytest.mark.parametrize("fn,values,xi", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_float32_is_computed_in_float64(rng, fn, values, xi):
    args64 = [filled(rng, v, (7,)) for v in values]
    got32 = fn(*[a.astype(np.float32) for a in args64])
    assert got32.dtype == np.float32
    ref = fn(*[a.astype(np.float32).astype(np.float64) for a in args64])
    np.testing.assert_array_equal(got32, ref.astype(np.float32))
    mixed = list(args64)
    mixed[xi] = mixed[xi].astype(np.float32)
    assert fn(*mixed).dtype == np.float64  # float32 with float64 promotes, as numpy does


@pytest.mark.parametrize("fn,values,xi", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_torch_in_torch_out_and_gradcheck(rng, fn, values, xi):
    import torch

    args = [torch.from_numpy(filled(rng, v, s)) for v, s in zip(values, [(3, 1), (4,), (1, 4)])]
    out = fn(*args)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.shape == (3, 4)
    np.testing.assert_array_equal(out.numpy(), fn(*[a.numpy() for a in args]))
    f32 = fn(*[a.float() for a in args])
    assert f32.dtype == torch.float32
    # non-contiguous inputs
    t = torch.from_numpy(filled(rng, values[xi], (4, 3))).T
    nc = list(args)
    nc[xi] = t
    np.testing.assert_array_equal(fn(*nc).numpy(), fn(*[a.numpy() if i != xi else t.contiguous().numpy()
                                                        for i, a in enumerate(nc)]))
    # gradcheck in x, broadcast against the other arguments (its gradient sums over them)
    x = args[xi].clone().requires_grad_(True)

    def f(x_):
        a = list(args)
        a[xi] = x_
        return fn(*a)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-7, atol=1e-6, rtol=1e-5)
    y = f(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    assert g.shape == x.shape
    x32 = x.detach().float().requires_grad_(True)
    a32 = [a.float() for a in args]
    a32[xi] = x32
    fn(*a32).sum().backward()
    assert x32.grad.dtype == torch.float32
    x64 = x32.detach().double().requires_grad_(True)  # the same (float32-rounded) points in float64
    a64 = [a.double() for a in a32]
    a64[xi] = x64
    fn(*a64).sum().backward()
    np.testing.assert_allclose(x32.grad.numpy(), x64.grad.numpy().astype(np.float32), rtol=1e-6, atol=1e-37)
    # no gradient with respect to the shape parameters: a clear error
    for j in range(len(args)):
        if j == xi:
            continue
        a = list(args)
        a[j] = a[j].clone().requires_grad_(True)
        with pytest.raises(NotImplementedError, match="gradient with respect to"):
            fn(*a).sum().backward()
    with torch.no_grad():
        assert not f(x).requires_grad
    (g1,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)  # no second derivative: an error
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
        torch.autograd.grad(g1.sum(), x)


def test_threaded_chunks_equal_one_pass(rng, monkeypatch):
    from fastgeo.special import _ufunc

    x = rng.uniform(0, 100, 1000)
    df = rng.uniform(0.5, 100, 1000)
    whole = S.chi2_logsf(x, df)
    import torch

    xt = torch.tensor(x, requires_grad=True)
    S.chi2_logsf(xt, torch.from_numpy(df)).sum().backward()
    monkeypatch.setattr(_ufunc, "CPU_CHUNK", 64)
    monkeypatch.setattr("numba.get_num_threads", lambda: 3)
    np.testing.assert_array_equal(S.chi2_logsf(x, df), whole)
    xc = torch.tensor(x, requires_grad=True)
    S.chi2_logsf(xc, torch.from_numpy(df)).sum().backward()
    np.testing.assert_array_equal(xc.grad.numpy(), xt.grad.numpy())


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("call,message", [
    (lambda: S.chi2_logsf([1.0, np.nan], 3), r"x contains NaN \(first at index \(1,\)\)"),
    (lambda: S.chi2_logsf(1.0, [3.0, np.nan]), r"df contains NaN"),
    (lambda: S.chi2_logsf(1.0, [3.0, 0.0]), r"df must be finite and > 0 \(first bad entry at index \(1,\): 0.0\)"),
    (lambda: S.chi2_logsf(1.0, np.inf), r"df must be finite and > 0"),
    (lambda: S.gamma_logsf(1.0, 2.0, -1.0), r"scale must be finite and > 0"),
    (lambda: S.log_gammaincc(2.0, [1.0, -1e-300]), r"x must be >= 0 \(first bad entry at index \(1,\)"),
    (lambda: S.log_gammaincc(-2.0, 1.0), r"a must be finite and > 0"),
    (lambda: S.f_logsf(1.0, 3.0, [[1.0, -4.0]]), r"dfd must be finite and > 0 \(first bad entry at index \(0, 1\)"),
    (lambda: S.log_betainc_upper(1.0, 2.0, 1.5), r"x must be in \[0, 1\]"),
    (lambda: S.log_betainc_upper(1.0, 0.0, 0.5), r"b must be finite and > 0"),
])
def test_bad_input_raises_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_mixed_libraries_and_dtypes_raise():
    import torch

    with pytest.raises(TypeError, match="pass arrays from one library"):
        S.chi2_logsf(torch.ones(2, dtype=torch.float64), np.ones(2))
    with pytest.raises(TypeError, match="float32 or float64"):
        S.chi2_logsf(torch.ones(2, dtype=torch.float16), 2.0)
    assert S.chi2_logsf(torch.ones(2, dtype=torch.float64), 3).dtype == torch.float64  # Python ints join
    assert S.chi2_logsf(np.arange(3), 3).dtype == np.float64  # integer arrays compute as float64


def test_importing_fastgeo_compiles_nothing():
    """import fastgeo, and fastgeo.special, import no Numba (so compile nothing); the first call
    compiles (or loads) the kernel."""
    code = ("import sys, fastgeo; sp = fastgeo.special; assert 'numba' not in sys.modules, 'numba imported'; "
            "assert sp.chi2_logsf(0.0, 2.0) == 0.0; print(sp.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "fastgeo.special", out.stderr[-2000:]
    assert fastgeo.special is S
