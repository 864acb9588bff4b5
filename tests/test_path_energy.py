"""The path energy of eq. (3), its gradients and the path log index (MATH.md 2 and 3).

Ground truth: eq. (3) written plainly in float64 torch, differentiated by autograd
(``plain_energy``); mpmath at 40 digits where float64 weights overflow.

Tolerances. float64: 1e-10 relative -- for E and dE/dl (sums of same-signed terms) relative to
the value, for dE/dG_j = 2 w_{j-1} dprev - 2 w_j dnext (which may cancel) relative to the
size of its terms |2 w_{j-1} dprev| + |2 w_j dnext|. float32: the inputs are float32 numbers,
exact in float64; the backends compute in float64 and round each output once, so the error is
at most half an ulp of float32 (2^-24 relative) of the value plus the float64 error (1e-12 of
the terms covers it).
"""
import math

import mpmath
import numpy as np
import pytest
import torch

import fastgeo
from fastgeo import energy_and_grads, path_energy, path_log_index
from fastgeo.path import solver_energy_and_grads
from fastgeo.backends import cpu as cpu_backend

F32_RTOL = 2.0**-24


@pytest.fixture(params=["cpu", "cpu-parallel", "reference"])
def backend(request, monkeypatch):
    """The backend to test; "cpu-parallel" is the cpu backend with its thread-parallel pass
    forced on (test inputs are small, so plain "cpu" runs the serial pass)."""
    if request.param == "cpu-parallel":
        monkeypatch.setattr(cpu_backend, "runs_parallel", lambda size: True)
        monkeypatch.setattr(cpu_backend, "MIN_PATH_BLOCK", 64)  # many column blocks too
        return "cpu"
    return request.param


# -- the plain float64 torch version of eq. (3) ----------------------------------------------
def plain_energy(G, l, alpha):
    """E of eq. (3) from torch float64 tensors, as one would write it."""
    G = G.reshape(G.shape[0], G.shape[1], -1)
    diff = G[:, 1:] - G[:, :-1]
    d = (diff * diff).sum(dim=2)
    log_a = math.log(alpha) + torch.logaddexp(l[:, :-1], l[:, 1:]) - math.log(2.0)
    return (log_a**2 * d).sum(dim=1)


def plain_energy_and_grads(G, l, alpha):
    """(E, dE/dG, dE/dl, size of the terms of dE/dG) as float64 numpy, via autograd."""
    G = torch.as_tensor(np.asarray(G, dtype=np.float64)).requires_grad_()
    l = torch.as_tensor(np.asarray(l, dtype=np.float64)).requires_grad_()
    E = plain_energy(G, l, alpha)
    dG, dl = torch.autograd.grad(E.sum(), [G, l])
    with torch.no_grad():
        log_a = math.log(alpha) + torch.logaddexp(l[:, :-1], l[:, 1:]) - math.log(2.0)
        coef = (2 * log_a**2).reshape(log_a.shape + (1,) * (G.ndim - 2))
        term = (coef * (G[:, 1:] - G[:, :-1])).abs()
        scale = torch.zeros_like(G)
        scale[:, 1:] += term
        scale[:, :-1] += term
    return E.detach().numpy(), dG.numpy(), dl.numpy(), scale.numpy()


def to_numpy(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def assert_matches_plain(got, G, l, alpha, f32_out=(False, False, False)):
    """got = (E, dG, dl) against the plain torch float64 autograd version of eq. (3)."""
    E, dG, dl, scale = plain_energy_and_grads(G, l, alpha)
    for name, value, ref, terms, f32 in (("E", got[0], E, np.abs(E), f32_out[0]),
                                         ("dE/dG", got[1], dG, scale, f32_out[1]),
                                         ("dE/dl", got[2], dl, np.abs(dl), f32_out[2])):
        value = to_numpy(value).astype(np.float64)
        assert value.shape == ref.shape, name
        bound = 1e-10 * terms if not f32 else F32_RTOL * np.abs(ref) + 1e-12 * terms
        err = np.abs(value - ref)
        worst = np.unravel_index(np.argmax(err - bound), err.shape)
        assert np.all(err <= bound), (f"{name}: error {err[worst]:.3g} > bound {bound[worst]:.3g} "
                                      f"at {worst} (value {ref[worst]:.6g})")


def random_path(rng, b, k1, tail, dtype, l_low=-30.0):
    G = rng.standard_normal((b, k1) + tuple(tail)).astype(dtype)
    l = rng.uniform(l_low, 0.0, (b, k1))
    return G, l


SHAPES = [
    (1, 2, (1,)),          # one segment, one value
    (1, 2, (37,)),         # K + 1 = 2
    (3, 7, (33,)),         # N not a multiple of the SIMD width
    (4, 11, (3, 5, 7)),    # image-like trailing dims (C, H, W)
    (1, 5, (5003,)),       # B = 1: the columns are split into blocks
    (6, 3, ()),            # decoded (B, K+1): one value per point
]


# -- exactness --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("b,k1,tail", SHAPES)
def test_numpy_matches_plain_autograd(rng, backend, dtype, b, k1, tail):
    G, l = random_path(rng, b, k1, tail, dtype)
    l = l.astype(dtype)
    alpha = float(rng.uniform(0.05, 0.95))
    got = energy_and_grads(G, l, alpha, backend=backend)
    assert [type(x) for x in got] == [np.ndarray] * 3
    assert [x.dtype for x in got] == [np.dtype(dtype)] * 3
    assert got[1].shape == G.shape and got[2].shape == l.shape and got[0].shape == (b,)
    f32 = dtype == np.float32
    assert_matches_plain(got, G, l, alpha, (f32, f32, f32))
    np.testing.assert_allclose(path_energy(G, l, alpha, backend=backend), got[0], rtol=1e-13)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("b,k1,tail", SHAPES[1:5])
def test_torch_matches_plain_autograd(rng, backend, dtype, b, k1, tail):
    G, l = random_path(rng, b, k1, tail, np.float64)
    Gt = torch.tensor(G, dtype=dtype)
    lt = torch.tensor(l, dtype=torch.float64)  # mixed dtypes: each gradient keeps its input's
    alpha = float(rng.uniform(0.05, 0.95))
    got = energy_and_grads(Gt, lt, alpha, backend=backend)
    assert all(isinstance(x, torch.Tensor) and not x.requires_grad for x in got)
    assert (got[0].dtype, got[1].dtype, got[2].dtype) == (dtype, dtype, torch.float64)
    f32 = dtype == torch.float32
    assert_matches_plain(got, Gt.numpy(), l, alpha, (f32, f32, False))

    # the autograd Function: E.sum().backward() fills both .grad
    Gr = Gt.clone().requires_grad_()
    lr = lt.clone().requires_grad_()
    E = path_energy(Gr, lr, alpha, backend=backend)
    assert E.requires_grad and E.dtype == dtype
    E.sum().backward()
    assert torch.equal(E.detach(), got[0])
    assert torch.equal(Gr.grad, got[1]) and torch.equal(lr.grad, got[2])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_contiguous_decoded(rng, backend, dtype):
    alpha = 0.3
    # numpy: points along the first axis in memory, then transposed; and a strided slice
    base = rng.standard_normal((9, 4, 2 * 301)).astype(dtype)
    l = rng.uniform(-10, 0, (4, 9))
    for G in (base.swapaxes(0, 1), base.swapaxes(0, 1)[:, :, ::2]):
        assert not G.flags.c_contiguous
        assert_matches_plain(energy_and_grads(G, l, alpha, backend=backend), G, l, alpha,
                             (dtype == np.float32,) * 2 + (False,))
    # torch: (B, K+1, C, H, W) permuted from (B, K+1, W, H, C), and a sliced tensor
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    t = torch.tensor(rng.standard_normal((3, 6, 9, 5, 3)), dtype=tdtype)
    lt = torch.tensor(rng.uniform(-10, 0, (3, 6)))
    for G in (t.permute(0, 1, 4, 3, 2), t[:, :, 1:8:3]):
        assert not G.is_contiguous()
        got = energy_and_grads(G, lt, alpha, backend=backend)
        assert got[1].shape == G.shape
        assert_matches_plain(got, G.numpy(), lt.numpy(), alpha, (tdtype == torch.float32,) * 2 + (False,))
        Gr = G.detach().clone().requires_grad_()
        path_energy(Gr, lt, alpha, backend=backend).sum().backward()
        assert torch.equal(Gr.grad, got[1])


def test_column_blocks_agree_with_whole_rows(rng, monkeypatch):
    """The parallel pass over many small column blocks (forced) gives the same sums and
    gradients as the serial pass over whole rows."""
    G, l = random_path(rng, 2, 6, (1000,), np.float64)
    whole = energy_and_grads(G, l, 0.4, backend="cpu")
    monkeypatch.setattr(cpu_backend, "runs_parallel", lambda size: True)
    monkeypatch.setattr(cpu_backend, "MIN_PATH_BLOCK", 64)
    assert cpu_backend.path_block(2, 1000, 2) < 1000
    blocked = energy_and_grads(G, l, 0.4, backend="cpu")
    assert np.array_equal(whole[1], blocked[1])
    np.testing.assert_allclose(blocked[0], whole[0], rtol=1e-13)
    np.testing.assert_allclose(blocked[2], whole[2], rtol=1e-13)


def test_path_block_choice():
    assert cpu_backend.path_block(32, 12288, 2) == 12288  # enough paths: whole rows
    block = cpu_backend.path_block(1, 12288, 2)
    assert block % 64 == 0 and block < 12288 and -(-12288 // block) >= 2
    assert cpu_backend.path_block(1, 5, 2) >= 5
    assert cpu_backend.path_block(3, 0, 2) >= 1


# -- torch autograd -----------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["cpu", "reference"])  # (many tiny calls: serial pass)
def test_gradcheck(rng, which):
    G = torch.tensor(rng.standard_normal((3, 5, 2, 3)), requires_grad=True)
    l = torch.tensor(rng.uniform(-8, 0, (3, 5)), requires_grad=True)
    alpha = float(rng.uniform(0.1, 0.9))
    assert torch.autograd.gradcheck(lambda g, x: path_energy(g, x, alpha, backend=which), (G, l))
    # one input at a time (the other is a constant)
    assert torch.autograd.gradcheck(lambda g: path_energy(g, l.detach(), alpha, backend=which), (G,))
    assert torch.autograd.gradcheck(lambda x: path_energy(G.detach(), x, alpha, backend=which), (l,))


def test_only_requested_gradients_are_formed(rng, monkeypatch):
    """dE/d decoded (a pass writing an array the size of decoded) only when decoded needs it."""
    calls = []
    original = cpu_backend.CPUBackend.path_energy

    def spy(self, G3, l, log_alpha, need_grads):
        calls.append(need_grads)
        return original(self, G3, l, log_alpha, need_grads)

    monkeypatch.setattr(cpu_backend.CPUBackend, "path_energy", spy)
    G0, l0 = random_path(rng, 2, 4, (6,), np.float64)
    l = torch.tensor(l0, requires_grad=True)
    path_energy(torch.tensor(G0), l, 0.5, backend="cpu").sum().backward()
    G = torch.tensor(G0, requires_grad=True)
    path_energy(G, torch.tensor(l0), 0.5, backend="cpu").sum().backward()
    path_energy(G0, l0, 0.5, backend="cpu")
    assert calls == [False, True, False]
    _, dG, dl = energy_and_grads(G0, l0, 0.5, backend="cpu")
    assert torch.equal(l.grad, torch.tensor(dl)) and torch.equal(G.grad, torch.tensor(dG))


def test_backward_scales_by_incoming_gradient(rng):
    G0, l0 = random_path(rng, 4, 6, (10,), np.float64, l_low=-5)
    weights = torch.tensor([2.0, 0.0, -1.5, 1.0], dtype=torch.float64)
    G = torch.tensor(G0, requires_grad=True)
    l = torch.tensor(l0, requires_grad=True)
    (path_energy(G, l, 0.5) * weights).sum().backward()
    _, dG, dl = energy_and_grads(G0, l0, 0.5)
    np.testing.assert_allclose(G.grad.numpy(), dG * weights.numpy()[:, None, None], rtol=1e-15)
    np.testing.assert_allclose(l.grad.numpy(), dl * weights.numpy()[:, None], rtol=1e-15)


def test_backward_twice_with_retained_graph(rng):
    G0, l0 = random_path(rng, 2, 4, (6,), np.float64)
    G = torch.tensor(G0, requires_grad=True)
    E = path_energy(G, torch.tensor(l0), 0.5)
    E.sum().backward(retain_graph=True)
    first = G.grad.clone()
    E.sum().backward()  # the fused gradient was handed over: backward recomputes it
    torch.testing.assert_close(G.grad, 2 * first, rtol=1e-15, atol=0)


def test_no_graph_without_grad(rng):
    G0, l0 = random_path(rng, 2, 4, (6,), np.float64)
    G = torch.tensor(G0, requires_grad=True)
    with torch.no_grad():
        E = path_energy(G, torch.tensor(l0), 0.5)
    assert not E.requires_grad
    assert not path_energy(torch.tensor(G0), torch.tensor(l0), 0.5).requires_grad


def test_torch_optimizer_lowers_the_energy(rng):
    """Adam on the interior points of a bent path: the energy decreases."""
    k1 = 9
    t = torch.linspace(0, 1, k1, dtype=torch.float64)
    ends = torch.stack([torch.zeros(k1), torch.sin(math.pi * t)], dim=-1)
    noise = 0.3 * torch.tensor(rng.standard_normal((1, k1 - 2, 2)))
    inner = (ends[None, 1:-1] + noise).requires_grad_()
    l = torch.tensor(rng.uniform(-3, -1, (1, k1)))
    opt = torch.optim.Adam([inner], lr=0.02)

    def energy():
        G = torch.cat([ends[None, :1], inner, ends[None, -1:]], dim=1)
        return path_energy(G, l, 0.5).sum()

    start = energy().item()
    for _ in range(60):
        opt.zero_grad()
        e = energy()
        e.backward()
        opt.step()
    assert energy().item() < 0.5 * start


# -- log-space stability and edge cases ------------------------------------------------------
def test_far_outside_the_prior_is_finite(rng, backend):
    G, _ = random_path(rng, 3, 8, (11,), np.float64)
    l = np.full((3, 8), -1e5)  # every point far out: w ~ 1e10
    got = energy_and_grads(G, l, 0.5, backend=backend)
    assert all(np.isfinite(x).all() for x in got)
    assert_matches_plain(got, G, l, 0.5)
    l = rng.uniform(-10, 0, (3, 8))
    l[:, 1::2] = -1e300  # isolated points far out, between ordinary ones
    got = energy_and_grads(G, l, 0.5, backend=backend)
    assert all(np.isfinite(x).all() for x in got)
    assert_matches_plain(got, G, l, 0.5)
    assert np.all(got[2][:, 1::2] == 0)  # their share r_j / (r_i + r_{i+1}) underflows to 0


def mp_energy_and_grads(G, l, alpha):
    """E, dE/dG, dE/dl of one path in mpmath (40 digits): weights beyond float64's range."""
    with mpmath.workdps(40):
        G = [[mpmath.mpf(float(v)) for v in row] for row in G]
        l = [mpmath.mpf(float(v)) for v in l]
        k = len(G) - 1
        log_a, d = [], []
        for i in range(k):
            hi = max(l[i], l[i + 1])
            lse = hi + mpmath.log(mpmath.exp(l[i] - hi) + mpmath.exp(l[i + 1] - hi))
            log_a.append(mpmath.log(alpha) + lse - mpmath.log(2))
            d.append(sum((G[i + 1][n] - G[i][n]) ** 2 for n in range(len(G[0]))))
        E = sum(log_a[i] ** 2 * d[i] for i in range(k))
        dG = [[mpmath.mpf(0)] * len(G[0]) for _ in range(k + 1)]
        dl = [mpmath.mpf(0)] * (k + 1)
        for i in range(k):
            for n in range(len(G[0])):
                t = 2 * log_a[i] ** 2 * (G[i + 1][n] - G[i][n])
                dG[i + 1][n] += t
                dG[i][n] -= t
            lse = log_a[i] - mpmath.log(alpha) + mpmath.log(2)
            dl[i] += 2 * log_a[i] * d[i] * mpmath.exp(l[i] - lse)
            dl[i + 1] += 2 * log_a[i] * d[i] * mpmath.exp(l[i + 1] - lse)
        return E, dG, dl


def test_weights_beyond_float64(rng, backend):
    """log a ~ -1e160: w ~ 1e320 overflows, yet E and the gradients are representable."""
    G = 1e-20 * rng.standard_normal((1, 5, 3))
    l = -1e160 * rng.uniform(1.0, 1.5, (1, 5))
    E, dG, dl = energy_and_grads(G, l, 0.5, backend=backend)
    mE, mdG, mdl = mp_energy_and_grads(G[0], l[0], 0.5)
    assert math.isclose(E[0], float(mE), rel_tol=1e-12)
    np.testing.assert_allclose(dl[0], [float(v) for v in mdl], rtol=1e-12)
    ref = np.array([[float(v) for v in row] for row in mdG])
    scale = np.max(np.abs(ref))
    np.testing.assert_allclose(dG[0], ref, rtol=0, atol=1e-12 * scale)
    # with ordinary differences the energy overflows: +inf, the gradients signed, no NaN
    G = rng.standard_normal((1, 5, 3))
    E, dG, dl = energy_and_grads(G, l, 0.5, backend=backend)
    assert E[0] == np.inf and not np.isnan(dG).any() and np.all(np.isfinite(dl))
    mdG = mp_energy_and_grads(G[0], l[0], 0.5)[1]
    assert np.array_equal(np.sign(dG[0]), np.sign([[float(mpmath.sign(v)) for v in row] for row in mdG]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_zero_density_points(backend, dtype):
    """l = -inf: E = +inf where the path moves between two such points; never NaN."""
    alpha = 0.5
    G = np.array([[0.0, 1.0, 3.0, 3.0, 4.0]], dtype=dtype)[..., None]  # segment 2 does not move
    l = np.array([[-1.0, -np.inf, -np.inf, -np.inf, -2.0]])
    E, dG, dl = energy_and_grads(G, l, alpha, backend=backend)
    la0 = math.log(alpha) - 1.0 - math.log(2.0)  # segment 0: logaddexp(-1, -inf) = -1
    la3 = math.log(alpha) - 2.0 - math.log(2.0)
    assert E[0] == np.inf
    # point 0: finite segment only; point 1: -inf from segment 1 (dprev=1, dnext=2 -> -inf);
    # point 2: +inf (dprev = 2 on an infinite segment, dnext = 0); point 3: the infinite
    # segment 2 does not move, so only segment 3's finite term; point 4: finite.
    expected_G = [-2 * la0**2 * 1, -np.inf, np.inf, -2 * la3**2 * 1, 2 * la3**2 * 1]
    np.testing.assert_allclose(dG[0, :, 0], expected_G, rtol=1e-6 if dtype == np.float32 else 1e-14)
    # dl: point 0 has share 1 in segment 0; points 1 and 2 are ends of the moving infinite
    # segment 1 (-inf); point 3 has share 0 in segment 3 and segment 2 does not move.
    expected_l = [2 * la0 * 1, -np.inf, -np.inf, 0.0, 2 * la3 * 1]
    np.testing.assert_allclose(dl[0], expected_l, rtol=1e-14)
    assert not any(np.isnan(x).any() for x in (E, dG, dl))

    # a point of zero density between ordinary ones: everything finite, share 0
    l2 = np.array([[-1.0, -np.inf, -2.0, -3.0, -2.0]])
    got = energy_and_grads(G, l2, alpha, backend=backend)
    assert all(np.isfinite(x).all() for x in got) and got[2][0, 1] == 0
    l2[0, 1] = -1e300  # the same as a point very far out
    assert all(np.array_equal(a, b) for a, b in zip(got, energy_and_grads(G, l2, alpha, backend=backend)))


def test_infinite_weights_cancelling(backend):
    """All points at l = -inf, moving at constant speed: the infinite terms of an inner point
    cancel and leave its (absent) finite terms, 0; the ends get +-inf."""
    G = np.array([[[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]])
    l = np.full((1, 3), -np.inf)
    E, dG, dl = energy_and_grads(G, l, 0.5, backend=backend)
    assert E[0] == np.inf
    np.testing.assert_array_equal(dG[0], [[-np.inf, 0.0], [0.0, 0.0], [np.inf, 0.0]])
    np.testing.assert_array_equal(dl[0], [-np.inf, -np.inf, -np.inf])


def test_segments_that_do_not_move(rng, backend):
    """A segment with d = 0 adds nothing, even with an infinite weight: the path equals the
    path with the repeated point removed."""
    G, l = random_path(rng, 2, 6, (4,), np.float64)
    G[:, 3] = G[:, 2]  # segment 2 has d = 0 ...
    l[0, 2:4] = -np.inf  # ... and, in path 0, an infinite weight
    l[1, 3] = l[1, 2]  # (so that removing point 3 keeps segment 3's weight)
    E, dG, dl = energy_and_grads(G, l, 0.5, backend=backend)
    assert all(np.isfinite(x).all() for x in (E, dG, dl))
    keep = [0, 1, 2, 4, 5]
    E2, dG2, dl2 = energy_and_grads(G[:, keep], l[:, keep], 0.5, backend=backend)
    assert_matches_plain((E2, dG2, dl2), G[:, keep], l[:, keep], 0.5)
    np.testing.assert_allclose(E, E2, rtol=1e-14)
    np.testing.assert_allclose(dG[:, [0, 1, 4, 5]], dG2[:, [0, 1, 3, 4]], rtol=1e-14)
    np.testing.assert_allclose(dG[:, 2] + dG[:, 3], dG2[:, 2], rtol=1e-12, atol=1e-12 * np.abs(dG).max())
    np.testing.assert_allclose(dl[:, [0, 1, 4, 5]], dl2[:, [0, 1, 3, 4]], rtol=1e-14)
    np.testing.assert_allclose(dl[:, 2] + dl[:, 3], dl2[:, 2], rtol=1e-14)
    assert np.all(dl[0, 2:4] == 0)  # zero-density points beside finite segments: share 0


def test_backends_agree(rng, backend):
    """cpu and reference agree on random inputs with every kind of edge mixed in."""
    G, l = random_path(rng, 5, 12, (257,), np.float64)
    l[rng.uniform(size=l.shape) < 0.3] = -np.inf
    l[rng.uniform(size=l.shape) < 0.1] = -1e300
    G[:, 4] = G[:, 5]
    other = "reference" if backend == "cpu" else "cpu"
    a = energy_and_grads(G, l, 0.7, backend=backend)
    b = energy_and_grads(G, l, 0.7, backend=other)
    for x, y in zip(a, b):
        assert not np.isnan(x).any()
        np.testing.assert_array_equal(np.isinf(x), np.isinf(y))
        finite = np.isfinite(x)
        # dE/dG may cancel: the two backends round the same terms differently (plain/scaled)
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-13 * np.abs(x[finite]).max(initial=0.0))
    np.testing.assert_allclose(path_log_index(G, l, backend=backend), path_log_index(G, l, backend=other),
                               rtol=1e-13)


# -- path log index ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_path_log_index(rng, backend, dtype):
    G, l = random_path(rng, 3, 7, (5, 9), dtype)
    got = path_log_index(G, l, backend=backend)
    assert got.dtype == dtype and got.shape == (3,)
    rows = G.astype(np.float64).reshape(3, 7, -1)
    step = np.linalg.norm(rows[:, 1:] - rows[:, :-1], axis=2)
    ref = np.sum((np.logaddexp(l[:, :-1], l[:, 1:]) - math.log(2)) * step, axis=1)
    np.testing.assert_allclose(got, ref, rtol=F32_RTOL if dtype == np.float32 else 1e-12)
    # torch in, torch out; differentiable when asked
    Gt = torch.tensor(G.astype(np.float64), requires_grad=True)
    lt = torch.tensor(l)
    out = path_log_index(Gt, lt, backend=backend)
    assert isinstance(out, torch.Tensor) and out.requires_grad
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-12)
    assert torch.autograd.gradcheck(lambda g: path_log_index(g, lt), (Gt,))
    no_grad = path_log_index(Gt.detach(), lt, backend=backend)
    assert isinstance(no_grad, torch.Tensor) and not no_grad.requires_grad


def test_path_log_index_edges(backend):
    G = np.array([[[0.0], [1.0], [1.0], [3.0]]])
    l = np.array([[-1.0, -np.inf, -np.inf, -2.0]])  # segment 1 does not move: 0
    got = path_log_index(G, l, backend=backend)
    assert math.isclose(got[0], (-1.0 - math.log(2)) * 1 + (-2.0 - math.log(2)) * 2, rel_tol=1e-14)
    G[0, 2] = 2.0  # now it moves between two points of zero density
    assert path_log_index(G, l, backend=backend)[0] == -np.inf
    Gt = torch.tensor(G, requires_grad=True)
    out = path_log_index(Gt, torch.tensor(l))
    assert out.item() == -np.inf
    G[0, 2] = 1.0
    Gt = torch.tensor(G, requires_grad=True)
    path_log_index(Gt, torch.tensor(l)).backward()
    assert not torch.isnan(Gt.grad).any()


# -- errors and empty inputs -------------------------------------------------------------------
@pytest.mark.parametrize("fn", ["energy_and_grads", "path_energy", "path_log_index"])
def test_bad_values_raise(rng, backend, fn):
    call = getattr(fastgeo, fn)
    args = (0.5,) if fn != "path_log_index" else ()
    G, l = random_path(rng, 2, 5, (40,), np.float32)
    for bad in (np.nan, np.inf, -np.inf):
        Gb = G.copy()
        Gb[1, 3, 17] = bad
        with pytest.raises(ValueError, match="decoded contains NaN or inf"):
            call(Gb, l, *args, backend=backend)
        with pytest.raises(ValueError, match="decoded contains NaN or inf"):
            call(torch.tensor(Gb, requires_grad=True), torch.tensor(l), *args, backend=backend)
    for bad in (np.nan, np.inf):
        lb = l.copy()
        lb[0, 2] = bad
        with pytest.raises(ValueError, match="log_ri contains NaN or \\+inf"):
            call(G, lb, *args, backend=backend)


def test_bad_arguments_raise(rng):
    G, l = random_path(rng, 2, 5, (4,), np.float64)
    with pytest.raises(ValueError, match="shape"):
        energy_and_grads(G, l[:, :4], 0.5)
    with pytest.raises(ValueError, match="shape"):
        energy_and_grads(G, l[:1], 0.5)
    with pytest.raises(ValueError, match="shape"):
        energy_and_grads(G, l[0], 0.5)
    with pytest.raises(ValueError, match="shape"):
        energy_and_grads(G[0, 0], l, 0.5)
    with pytest.raises(ValueError, match="at least 2 points"):
        energy_and_grads(G[:, :1], l[:, :1], 0.5)
    for alpha in (0.0, 1.0, 1.5, -0.2, float("nan"), True, "0.5"):
        with pytest.raises(ValueError, match="alpha"):
            path_energy(G, l, alpha)
    with pytest.raises(TypeError, match="float32 or float64"):
        energy_and_grads(G.astype(np.int64), l, 0.5)
    with pytest.raises(TypeError, match="one library"):
        energy_and_grads(torch.tensor(G), l, 0.5)
    with pytest.raises(TypeError, match="one library"):
        path_energy(torch.tensor(G, requires_grad=True), l, 0.5)
    with pytest.raises(TypeError, match="one library"):
        path_log_index(G, torch.tensor(l))
    with pytest.raises(ValueError, match="backend"):
        path_energy(G, l, 0.5, backend="gpu")


def test_overflowing_differences_raise(backend):
    G = np.array([[[1e200], [-1e200]]])
    with pytest.raises(ValueError, match="overflows"):
        energy_and_grads(G, np.zeros((1, 2)), 0.5, backend=backend)


def test_empty_batch(backend):
    E, dG, dl = energy_and_grads(np.empty((0, 4, 3)), np.empty((0, 4)), 0.5, backend=backend)
    assert E.shape == (0,) and dG.shape == (0, 4, 3) and dl.shape == (0, 4)
    empty_index = path_log_index(np.empty((0, 4, 3), np.float32), np.empty((0, 4)), backend=backend)
    assert empty_index.shape == (0,) and empty_index.dtype == np.float32
    E = path_energy(torch.empty(0, 4, 3, requires_grad=True), torch.empty(0, 4), 0.5, backend=backend)
    assert E.shape == (0,)


def test_read_only_decoded(rng):
    G, l = random_path(rng, 2, 4, (9,), np.float32)
    ro = G.copy()
    ro.flags.writeable = False
    for x, y in zip(energy_and_grads(ro, l, 0.5, backend="cpu"), energy_and_grads(G, l, 0.5, backend="cpu")):
        assert np.array_equal(x, y)



# -- the solver's layout: end points apart, free points' gradient only -------------------------
def split_path(G):
    return G[:, 0], G[:, 1:-1], G[:, -1]


def assert_solver_layout_matches(got, G, l, alpha, f32):
    """got = solver_energy_and_grads(...) against the plain float64 autograd version."""
    E, dG, dl, scale = plain_energy_and_grads(G, l, alpha)
    energy, d_free, d_l, w = (to_numpy(x) for x in got)
    assert energy.dtype == np.float64 and w.dtype == np.float64
    # E is accumulated and returned in float64 whatever the outputs' dtype
    np.testing.assert_allclose(energy, E, rtol=1e-10, atol=0)
    bound = (F32_RTOL * np.abs(dG) + 1e-12 * scale) if f32 else 1e-10 * scale
    assert d_free.shape == dG[:, 1:-1].shape
    assert np.all(np.abs(d_free.astype(np.float64) - dG[:, 1:-1]) <= bound[:, 1:-1])
    np.testing.assert_allclose(d_l, dl, rtol=1e-10, atol=0)
    log_a = math.log(alpha) + np.logaddexp(l[:, :-1], l[:, 1:]) - math.log(2.0)
    np.testing.assert_allclose(w, log_a**2, rtol=1e-14, atol=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("b,k1,tail", SHAPES)
def test_solver_layout_matches_plain_autograd(rng, backend, dtype, b, k1, tail):
    G, l = random_path(rng, b, k1, tail, dtype)
    alpha = float(rng.uniform(0.05, 0.95))
    got = solver_energy_and_grads(*split_path(G), l, alpha, backend=backend)
    assert [type(x) for x in got] == [np.ndarray] * 4
    assert got[1].dtype == dtype and got[1].flags.c_contiguous
    assert_solver_layout_matches(got, G, l, alpha, dtype == np.float32)
    # the same without the free points' gradient
    e, none, d_l, w = solver_energy_and_grads(*split_path(G), l, alpha, backend=backend, need_grad_decoded=False)
    assert none is None
    assert np.array_equal(e, got[0]) and np.array_equal(d_l, got[2]) and np.array_equal(w, got[3])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_solver_layout_torch_and_non_contiguous(rng, backend, dtype):
    alpha = float(rng.uniform(0.05, 0.95))
    # (B, K+1, C, H, W) permuted from (B, K+1, W, H, C): no part of it is contiguous
    t = torch.tensor(rng.standard_normal((3, 7, 9, 5, 3)), dtype=dtype).permute(0, 1, 4, 3, 2)
    l = torch.tensor(rng.uniform(-20, 0, (3, 7)))
    g0, free, g1 = split_path(t)
    assert not (g0.is_contiguous() or free.is_contiguous() or g1.is_contiguous())
    got = solver_energy_and_grads(g0, free, g1, l, alpha, backend=backend)
    assert all(isinstance(x, torch.Tensor) for x in got)
    assert got[1].shape == free.shape and got[1].dtype == dtype and got[1].is_contiguous()
    assert got[0].dtype == torch.float64
    assert_solver_layout_matches(got, t.numpy(), l.numpy(), alpha, dtype == torch.float32)
    # and a strided slice of the columns, in numpy
    G = rng.standard_normal((4, 10, 2 * 131)).astype(np.float32)[:, :, ::2]
    l = rng.uniform(-5, 0, (4, 10))
    assert_solver_layout_matches(solver_energy_and_grads(*split_path(G), l, alpha, backend=backend), G, l, alpha,
                                 True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_solver_layout_reports_bad_paths_without_raising(rng, backend, dtype):
    """NaN/inf outputs or NaN/+inf log ri: E = NaN for that path alone; log ri = -inf: E = +inf;
    the gradients of those paths are 0; every other path is exact. No warnings (they are
    errors in this suite)."""
    G, l = random_path(rng, 7, 9, (23,), dtype)
    alpha = 0.4
    G[1, 4, 3] = np.nan
    G[2, 0, 0] = np.inf  # an end point
    l[3, 5] = np.nan
    l[4, 2] = np.inf
    l[5, 6] = -np.inf
    energy, d_free, d_l, w = solver_energy_and_grads(*split_path(G), l, alpha, backend=backend)
    assert np.isnan(energy[1:5]).all() and energy[5] == np.inf
    assert not d_free[1:6].any() and not d_l[1:6].any()
    good = [0, 6]
    assert_solver_layout_matches((energy[good], d_free[good], d_l[good], w[good]), G[good], l[good], alpha,
                                 dtype == np.float32)
    # the public functions keep refusing such input
    with pytest.raises(ValueError):
        energy_and_grads(G, l, alpha, backend=backend)


def test_solver_layout_bad_arguments_and_empty(rng):
    G, l = random_path(rng, 2, 5, (4,), np.float64)
    g0, free, g1 = split_path(G)
    with pytest.raises(ValueError, match="shape"):
        solver_energy_and_grads(g0, free, g1, l[:, 1:], 0.5)
    with pytest.raises(ValueError, match="shape"):
        solver_energy_and_grads(g0[:1], free, g1, l, 0.5)
    with pytest.raises(TypeError, match="dtype"):
        solver_energy_and_grads(g0.astype(np.float32), free, g1, l, 0.5)
    with pytest.raises(ValueError):
        solver_energy_and_grads(g0, free, g1, l, 1.5)
    e, d, dl, w = solver_energy_and_grads(g0[:0], free[:0], g1[:0], l[:0], 0.5)
    assert e.shape == (0,) and d.shape == (0, 3, 4) and dl.shape == (0, 5) and w.shape == (0, 4)
