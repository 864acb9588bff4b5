"""fastgeo.interpolate: the ri-optimal path solver (paper section 5, MATH.md 3).

Properties checked: the gradient of the batched evaluation against torch autograd and finite
differences of a plainly written energy; Observation 1 (linear generator, uniform box prior:
the linear path is optimal); alpha -> 0 gives decoded geodesics (great circles on the sphere);
the semicircle prior bends paths into high-ri regions; "lbfgs" and "gd" agree on the optimum
and lbfgs needs far fewer generator evaluations; per-path convergence, failure flags and
input validation.
"""
import math

import numpy as np
import pytest
import torch

import fastgeo
from fastgeo._path_problem import PathProblem
from fastgeo.priors import Gaussian, StandardNormal, UniformBox, semicircle

#: the solver methods each solver property is checked for
SOLVERS = ["lbfgs", "lbfgs-gn"]


def mlp(rng, d, n, hidden=16, dtype=torch.float64):
    """A fixed random tanh MLP R^d -> R^n with weights drawn from ``rng``."""
    torch_gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    net = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, n))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=torch_gen) / math.sqrt(p.shape[-1]))
    return net.to(dtype).eval()


def sphere(angles):
    """(theta, phi) -> the unit sphere in R^3: its geodesics are great-circle arcs."""
    th, ph = angles[:, 0], angles[:, 1]
    return torch.stack([th.sin() * ph.cos(), th.sin() * ph.sin(), th.cos()], dim=1)


def identity(x):
    return x


def plain_energy(generator, path, prior, alpha):
    """E = sum_i log^2(alpha (r_i + r_{i+1}) / 2) |G(x_{i+1}) - G(x_i)|^2 written out directly."""
    b, k1, d = path.shape
    out = generator(path.reshape(-1, d)).reshape(b, k1, -1)
    r = fastgeo.ri(path, prior)
    w = torch.log(alpha * (r[:, 1:] + r[:, :-1]) / 2) ** 2
    dist2 = ((out[:, 1:] - out[:, :-1]) ** 2).sum(dim=2)
    return (w * dist2).sum(dim=1)


# -- the gradient ----------------------------------------------------------------------------

@pytest.mark.parametrize("prior_name", ["normal", "semicircle"])
def test_gradient_matches_autograd_and_finite_differences(rng, prior_name):
    d, k, b = 3, 6, 3
    prior = StandardNormal(d) if prior_name == "normal" else semicircle(d, kde_samples=2000)
    gen = mlp(rng, d, 5)
    alpha = 0.3
    z = torch.from_numpy(rng.standard_normal((b, k + 1, d)) * 1.5)
    problem = PathProblem(gen, z[:, 0], z[:, -1], prior, alpha)
    idx = torch.arange(b)
    ev = problem.evaluate(idx, z[:, 1:-1])
    grad = ev.gradient()

    free = z[:, 1:-1].clone().requires_grad_(True)
    full = torch.cat([z[:, :1], free, z[:, -1:]], dim=1)
    e_plain = plain_energy(gen, full, prior, alpha)
    (g_plain,) = torch.autograd.grad(e_plain.sum(), free)
    np.testing.assert_allclose(ev.energy.numpy(), e_plain.detach().numpy(), rtol=1e-10)
    atol = 1e-9 * float(g_plain.abs().max())
    np.testing.assert_allclose(grad.numpy(), g_plain.numpy(), rtol=1e-7, atol=atol)

    # central differences of the plain energy along a random direction
    v = torch.from_numpy(rng.standard_normal(free.shape))
    h = 1e-5
    with torch.no_grad():
        def e_at(s):
            moved = torch.cat([z[:, :1], z[:, 1:-1] + s * v, z[:, -1:]], dim=1)
            return plain_energy(gen, moved, prior, alpha)
        fd = (e_at(h) - e_at(-h)) / (2 * h)
    np.testing.assert_allclose((grad * v).sum(dim=(1, 2)).numpy(), fd.numpy(), rtol=1e-5)
    assert problem.n_vjp == b * (k - 1)
    assert problem.n_forward == 2 * b + b * (k - 1)


# -- Observation 1: linear injective generator, uniform prior on a box --------------------------

@pytest.mark.parametrize("method", SOLVERS)
def test_observation1_linear_generator_uniform_box_gives_linear_path(rng, method):
    d, n, b, k = 4, 7, 3, 11
    a = torch.from_numpy(rng.standard_normal((n, d)))
    gen = lambda x: x @ a.T  # noqa: E731 - injective with probability one
    box = UniformBox(-np.ones(d), np.ones(d))
    z0 = torch.from_numpy(rng.uniform(-0.9, 0.9, (b, d)))
    z1 = torch.from_numpy(rng.uniform(-0.9, 0.9, (b, d)))
    linear = fastgeo.linear_path(gen, z0, z1, box, n_points=k + 1)

    res = fastgeo.interpolate(gen, z0, z1, box, n_points=k + 1, method=method)
    assert res.status == ("converged",) * b
    torch.testing.assert_close(res.path, linear.path, rtol=0, atol=1e-10)

    # from a perturbed start (inside the box) the solver comes back to the linear path
    init = linear.path.clone()
    init[:, 1:-1] += 0.1 * torch.from_numpy(rng.standard_normal((b, k - 1, d)))
    init = init.clamp(-1 + 1e-3, 1 - 1e-3)  # strictly inside: the edge has a test of its own
    res = fastgeo.interpolate(gen, z0, z1, box, n_points=k + 1, init=init, ftol=1e-14, method=method)
    assert all(s in ("converged", "no_decrease") for s in res.status)
    assert (res.energy_history[:, 0] > linear.energy * (1 + 1e-3)).all()  # the start was off
    torch.testing.assert_close(res.energy, linear.energy, rtol=1e-12, atol=0)
    # How close the points can come is set by float64's resolution of E: E = w sum_j |A dx_j|^2
    # (w constant under the box) has Hessian 2 w (L kron A^T A), L the free points' path
    # Laplacian, and a line search cannot see a decrease below the rounding of E's K terms, so
    # a point is determined to |dx| <= sqrt(2 K eps E / lambda_min) at best. (An atol of 1e-8,
    # below that floor, failed at seed 5664175911491514726: 2.8e-8 with a floor of 2.7e-7.)
    steps = linear.path[:, 1:] - linear.path[:, :-1]
    w = linear.energy / ((steps @ a.T) ** 2).sum(dim=(1, 2))
    lam_min = 2 * w * torch.linalg.svdvals(a)[-1] ** 2 * 4 * math.sin(math.pi / (2 * k)) ** 2
    floor = torch.sqrt(2 * k * torch.finfo(torch.float64).eps * linear.energy / lam_min)
    off = (res.path - linear.path).abs().amax(dim=(1, 2))
    assert (off <= floor).all(), (off, floor)


@pytest.mark.parametrize("method", SOLVERS)
def test_start_on_the_support_edge_is_never_reported_converged_short_of_the_minimum(rng, method):
    # Observation 1's set-up from a start with points on the faces of the box: steps that
    # push them out have E = inf. A path must reach the minimum (the linear path) or say that
    # it stopped short ("stalled" / "no_decrease"); "converged" at a higher energy is a lie.
    d, n, b, k = 4, 7, 6, 11
    a = torch.from_numpy(rng.standard_normal((n, d)))
    gen = lambda x: x @ a.T  # noqa: E731
    box = UniformBox(-np.ones(d), np.ones(d))
    z0 = torch.from_numpy(rng.uniform(-0.9, 0.9, (b, d)))
    z1 = torch.from_numpy(rng.uniform(-0.9, 0.9, (b, d)))
    linear = fastgeo.linear_path(gen, z0, z1, box, n_points=k + 1)
    init = linear.path.clone()
    init[:, 1:-1] += 0.5 * torch.from_numpy(rng.standard_normal((b, k - 1, d)))
    init[:, k // 2, 0] = 1.0  # every path has a point on a face
    init = init.clamp(-1, 1)
    res = fastgeo.interpolate(gen, z0, z1, box, n_points=k + 1, init=init, ftol=1e-14, method=method)
    assert torch.isfinite(res.energy).all()
    assert (res.energy < res.energy_history[:, 0]).all()
    for status, e, e_min in zip(res.status, res.energy.tolist(), linear.energy.tolist()):
        if status == "converged":
            assert e == pytest.approx(e_min, rel=1e-9)
        else:
            assert status in ("stalled", "no_decrease")
    assert res.path[:, 1:-1].abs().max() <= 1  # never left the support


# -- alpha -> 0: decoded geodesics ------------------------------------------------------------

@pytest.mark.parametrize("method", SOLVERS)
def test_tiny_alpha_gives_great_circles_on_the_sphere(rng, method):
    k = 24
    prior = Gaussian([0.8, 0.0], np.eye(2))
    # endpoints in the northern half, far apart in longitude: the linear path in angles runs
    # near a circle of latitude, at least 4% longer than the great circle
    theta = rng.uniform(0.5, 1.0, (2, 2))
    z0 = torch.from_numpy(np.stack([theta[0], rng.uniform(-1.3, -0.8, 2)], axis=1))
    z1 = torch.from_numpy(np.stack([theta[1], rng.uniform(0.8, 1.3, 2)], axis=1))
    res = fastgeo.interpolate(sphere, z0, z1, prior, n_points=k + 1, alpha=1e-300, method=method)
    linear = fastgeo.linear_path(sphere, z0, z1, prior, n_points=k + 1, alpha=1e-300)
    assert res.status == ("converged",) * 2

    g0, g1 = sphere(z0), sphere(z1)
    arc = torch.arccos((g0 * g1).sum(dim=1))
    best = 2 * k * torch.sin(arc / (2 * k))  # K equal chords of the great-circle arc
    length = res.distances.sum(dim=1)
    assert (linear.distances.sum(dim=1) / best - 1 > 0.02).all()  # the linear path is clearly longer
    torch.testing.assert_close(length, best, rtol=1e-5, atol=0)
    normal = torch.linalg.cross(g0, g1)
    normal = normal / normal.norm(dim=1, keepdim=True)
    off_plane = (res.decoded * normal[:, None]).sum(dim=2).abs().max()
    assert off_plane < 5e-3  # on the great circle, up to the realism term's log ri / log alpha
    spread = res.distances.std(dim=1) / res.distances.mean(dim=1)
    assert spread.max() < 2e-3  # energy minimisers move at constant speed


# -- the semicircle prior --------------------------------------------------------------------

@pytest.mark.parametrize("method", SOLVERS)
def test_semicircle_2d_optimal_path_stays_realistic(method):
    prior = semicircle(2)
    z0, z1 = np.array([4.0, 7.0]), np.array([4.0, -7.0])
    res = fastgeo.interpolate(identity, z0, z1, prior, n_points=22, method=method)
    linear = fastgeo.linear_path(identity, z0, z1, prior, n_points=22)
    assert res.status == "converged"
    assert linear.ri.min() < 1e-3  # MATH.md 1.3: about 2e-4 in the limit of many points
    assert res.ri.min() > 0.1
    assert res.ri.min() >= 10 * linear.ri.min()
    assert res.path_log_index > linear.path_log_index + 10
    assert isinstance(res.path, np.ndarray) and res.path.shape == (22, 2)


@pytest.mark.parametrize("method", SOLVERS)
def test_semicircle_20d_horn_to_horn_raises_path_index(rng, method):
    prior = semicircle(20)
    b = 3
    e = rng.standard_normal((2, b, 20))
    z0 = prior.means[0] + e[0] @ prior._chols[0].T  # samples of the first horn
    z1 = prior.means[2] + e[1] @ prior._chols[2].T  # and of the third
    res = fastgeo.interpolate(identity, z0, z1, prior, n_points=16, method=method)
    linear = fastgeo.linear_path(identity, z0, z1, prior, n_points=16)
    assert all(s == "converged" for s in res.status)
    assert (res.path_log_index > linear.path_log_index).all()
    assert (res.energy < linear.energy).all()


# -- the two methods ---------------------------------------------------------------------------

def test_lbfgs_and_gd_reach_the_same_energy_and_lbfgs_is_cheaper(rng):
    # the sphere with a Gaussian prior at the default alpha: curved generator, active realism
    # term, and a single minimum near the start (random MLPs can fold, and then the two
    # methods may settle in different local minima)
    k, b = 7, 2
    gen, prior = sphere, Gaussian([1.2, 0.0], np.eye(2))
    theta = rng.uniform(0.6, 1.4, (2, b))
    z0 = torch.from_numpy(np.stack([theta[0], rng.uniform(-1.3, -0.8, b)], axis=1))
    z1 = torch.from_numpy(np.stack([theta[1], rng.uniform(0.8, 1.3, b)], axis=1))
    fast = fastgeo.interpolate(gen, z0, z1, prior, n_points=k + 1, ftol=1e-12)
    gd = fastgeo.interpolate(gen, z0, z1, prior, n_points=k + 1, method="gd", ftol=1e-13, max_iter=30000)
    torch.testing.assert_close(gd.energy, fast.energy, rtol=1e-6, atol=0)
    torch.testing.assert_close(gd.path, fast.path, rtol=0, atol=1e-3)
    # generator work (deterministic counts, not times): lbfgs gets within 1% of the energy gd
    # converges to with at most a fifth of what gd spends to converge, and it is at least 5x
    # cheaper than gd to reach the optimum to 1e-6
    for i in range(b):
        t_fast = int(torch.nonzero(fast.energy_history[i] <= 1.01 * gd.energy[i])[0])
        assert 5 * fast.forward_history[i, t_fast] <= gd.forward_history[i, -1]
        tight = fast.energy[i] * (1 + 1e-6)
        t_fast = int(torch.nonzero(fast.energy_history[i] <= tight)[0])
        t_gd = int(torch.nonzero(gd.energy_history[i] <= tight)[0])
        assert 5 * fast.forward_history[i, t_fast] <= gd.forward_history[i, t_gd]
    assert (gd.energy_history[:, 1:] <= gd.energy_history[:, :-1]).all()  # plain descent never goes up
    assert fast.n_forward < gd.n_forward / 5


def test_gd_halves_a_too_large_step_and_keeps_descending(rng):
    k, b = 7, 2
    prior = Gaussian([1.2, 0.0], np.eye(2))
    z0 = torch.from_numpy(np.stack([rng.uniform(0.6, 1.4, b), rng.uniform(-1.3, -0.8, b)], axis=1))
    z1 = torch.from_numpy(np.stack([rng.uniform(0.6, 1.4, b), rng.uniform(0.8, 1.3, b)], axis=1))
    ref = fastgeo.interpolate(sphere, z0, z1, prior, n_points=k + 1, ftol=1e-12)
    res = fastgeo.interpolate(sphere, z0, z1, prior, n_points=k + 1, method="gd", lr=1e3, ftol=1e-12,
                              max_iter=20000)
    assert (res.energy_history[:, 1:] <= res.energy_history[:, :-1]).all()
    assert (res.forward_history[:, -1] > res.iterations + 5).all()  # rejected steps were tried
    torch.testing.assert_close(res.energy, ref.energy, rtol=1e-6, atol=0)
    plain = fastgeo.interpolate(sphere, z0, z1, prior, n_points=k + 1, precondition=False, ftol=1e-12)
    torch.testing.assert_close(plain.energy, ref.energy, rtol=1e-8, atol=0)


def test_energy_history_and_counts_are_consistent(rng):
    d, k, b = 4, 9, 3
    gen = mlp(rng, d, 6)
    prior = StandardNormal(d)
    z0 = torch.from_numpy(rng.standard_normal((b, d)))
    z1 = torch.from_numpy(rng.standard_normal((b, d)))
    res = fastgeo.interpolate(gen, z0, z1, prior, n_points=k + 1)
    linear = fastgeo.linear_path(gen, z0, z1, prior, n_points=k + 1)
    t = int(res.iterations.max())
    assert res.energy_history.shape == (b, t + 1)
    torch.testing.assert_close(res.energy_history[:, 0], linear.energy, rtol=1e-12, atol=0)
    assert torch.equal(res.energy_history[:, -1], res.energy)
    assert (res.energy_history[:, 1:] <= res.energy_history[:, :-1]).all()
    # the reported energy, ri and distances belong to the reported path
    torch.testing.assert_close(res.decoded, gen(res.path.reshape(-1, d)).reshape(b, k + 1, -1).detach())
    torch.testing.assert_close(res.log_ri, fastgeo.log_ri(res.path, prior))
    torch.testing.assert_close(res.energy, fastgeo.path_energy(res.decoded, res.log_ri, res.alpha).double())
    torch.testing.assert_close(res.distances, (res.decoded[:, 1:] - res.decoded[:, :-1]).norm(dim=2))
    assert res.n_forward == 2 * b + (k - 1) * int(res.forward_history[:, -1].sum())
    assert res.n_vjp == (k - 1) * int(res.vjp_history[:, -1].sum())
    assert res.converged.all() and res.converged.dtype == torch.bool


def test_gradient_tolerance_stops_paths(rng):
    gen = mlp(rng, 3, 5)
    z0, z1 = torch.from_numpy(rng.standard_normal((2, 3))), torch.from_numpy(rng.standard_normal((2, 3)))
    full = fastgeo.interpolate(gen, z0, z1, StandardNormal(3), n_points=8, ftol=0.0, gtol=1e-6)
    assert full.status == ("converged", "converged")
    loose = fastgeo.interpolate(gen, z0, z1, StandardNormal(3), n_points=8, ftol=0.0, gtol=1e6)
    assert loose.status == ("converged", "converged") and (loose.iterations == 0).all()
    assert (full.iterations > 0).all() and (full.energy < loose.energy).all()


def test_converged_paths_leave_the_batch():
    # a path whose endpoints coincide is optimal at once; it must not cost more evaluations
    prior = StandardNormal(2)
    z0 = torch.tensor([[1.0, 2.0], [0.5, 0.5]], dtype=torch.float64)
    z1 = torch.tensor([[-2.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
    both = fastgeo.interpolate(identity, z0, z1, prior, n_points=12)
    alone = fastgeo.interpolate(identity, z0[:1], z1[:1], prior, n_points=12)
    assert both.status == ("converged", "converged")
    assert int(both.iterations[1]) == 0 and float(both.energy[1]) == 0.0
    assert int(both.forward_history[1, -1]) == 1
    torch.testing.assert_close(both.path[0], alone.path[0], rtol=0, atol=1e-12)
    assert both.n_forward == alone.n_forward + 2 + 10


# -- array types -------------------------------------------------------------------------------

def test_float32_torch_in_float32_torch_out(rng):
    d = 3
    gen = mlp(rng, d, 5, dtype=torch.float32)
    z0 = torch.from_numpy(rng.standard_normal((2, d)).astype(np.float32))
    z1 = torch.from_numpy(rng.standard_normal((2, d)).astype(np.float32))
    res = fastgeo.interpolate(gen, z0, z1, StandardNormal(d), n_points=8)
    assert res.path.dtype == torch.float32 and res.decoded.dtype == torch.float32
    assert res.path.shape == (2, 8, d) and res.decoded.shape == (2, 8, 5)
    assert torch.equal(res.path[:, 0], z0) and torch.equal(res.path[:, -1], z1)
    assert all(s in ("converged", "no_decrease") for s in res.status)
    lin = fastgeo.linear_path(gen, z0, z1, StandardNormal(d), n_points=8)
    assert (res.energy <= lin.energy).all()


def test_numpy_and_unbatched(rng):
    d = 2
    z0, z1 = rng.standard_normal(d), rng.standard_normal(d)
    res = fastgeo.interpolate(identity, z0, z1, StandardNormal(d), n_points=6)
    assert isinstance(res.path, np.ndarray) and res.path.shape == (6, d)
    assert isinstance(res.energy, np.ndarray) and res.energy.shape == ()
    assert isinstance(res.status, str) and res.ri.shape == (6,) and res.distances.shape == (5,)
    batched = fastgeo.interpolate(identity, z0[None], z1[None], StandardNormal(d), n_points=6)
    np.testing.assert_array_equal(batched.path[0], res.path)
    assert batched.path_ri.shape == (1,) and 0 < batched.path_ri[0] <= 1


def test_two_and_three_points(rng):
    z0, z1 = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    two = fastgeo.interpolate(identity, z0, z1, StandardNormal(3), n_points=2)
    assert two.path.shape == (2, 2, 3) and (two.iterations == 0).all()
    np.testing.assert_allclose(two.distances[:, 0], np.linalg.norm(z1 - z0, axis=1))
    three = fastgeo.interpolate(identity, z0, z1, StandardNormal(3), n_points=3)
    assert three.path.shape == (2, 3, 3)
    assert (three.energy <= fastgeo.linear_path(identity, z0, z1, StandardNormal(3), n_points=3).energy).all()


def test_empty_batch():
    z = torch.zeros((0, 3), dtype=torch.float64)
    res = fastgeo.interpolate(identity, z, z, StandardNormal(3), n_points=5)
    assert res.path.shape == (0, 5, 3) and res.energy.shape == (0,) and res.status == ()


def test_progress_bar_can_be_shown(capsys):
    z0, z1 = np.array([1.0, 0.0]), np.array([-1.0, 0.5])
    fastgeo.interpolate(identity, z0, z1, StandardNormal(2), n_points=5, progress=True)
    assert "interpolate" in capsys.readouterr().err
    fastgeo.interpolate(identity, z0, z1, StandardNormal(2), n_points=5)
    assert capsys.readouterr().err == ""  # stderr is no terminal here: no bar by default


# -- failures ---------------------------------------------------------------------------------

class NaNAfter:
    """Decodes the first two latent coordinates with ``base``; after ``calls`` path evaluations
    it returns NaN for latents whose third coordinate (a tag the output ignores) is positive.

    Path evaluations are the calls made with autograd enabled; the no-grad decodes of the
    endpoints and of the result and the Gauss-Newton phase's forward-mode Jacobian calls are
    not counted (counting those broke the generator one iteration early for a path that had
    switched to Gauss-Newton, seed 8027386720047389100)."""

    def __init__(self, base, calls):
        self.base, self.calls, self.count = base, calls, 0

    def __call__(self, x):
        self.count += torch.is_grad_enabled()
        out = self.base(x[:, :2])
        if self.count > self.calls:
            out = torch.where((x[:, 2] > 0)[:, None], float("nan"), out)
        return out


@pytest.mark.parametrize("method", SOLVERS)
def test_nan_from_generator_flags_only_that_path(rng, method):
    # Under a uniform prior and a generator that ignores the third coordinate, that coordinate
    # has zero gradient and never moves: it tags path 1 (+5) against the others (-5).
    gen = mlp(rng, 2, 4)
    prior = UniformBox(-10 * np.ones(3), 10 * np.ones(3))
    z0 = torch.from_numpy(rng.uniform(-2, 2, (3, 3)))
    z1 = torch.from_numpy(rng.uniform(-2, 2, (3, 3)))
    z0[:, 2] = z1[:, 2] = -5.0
    z0[1, 2] = z1[1, 2] = 5.0
    gen = NaNAfter(gen, calls=10**9)
    clean = fastgeo.interpolate(gen, z0, z1, prior, n_points=8, method=method)
    assert int(clean.iterations[1]) >= 2
    # break the generator right after path 1's iteration t: every path evaluation evaluates all
    # active paths, so path 1 has been evaluated forward_history[1, t] times by then
    t = int(clean.iterations[1]) // 2
    flaky = NaNAfter(gen.base, calls=int(clean.forward_history[1, t]))
    res = fastgeo.interpolate(flaky, z0, z1, prior, n_points=8, method=method)
    assert res.status[1] == "nan" and not bool(res.converged[1])
    assert res.status[0] == res.status[2] == "converged"
    assert int(res.iterations[1]) == t
    torch.testing.assert_close(res.path[[0, 2]], clean.path[[0, 2]])
    # the flagged path holds its last finite iterate, decoded, with finite diagnostics
    assert torch.isfinite(res.decoded[1]).all() and torch.isfinite(res.energy[1])
    torch.testing.assert_close(res.decoded[1], gen.base(res.path[1, :, :2]).detach())
    torch.testing.assert_close(res.path[:, :, 2].abs(), torch.full((3, 8), 5.0, dtype=torch.float64))
    assert res.energy[1] == clean.energy_history[1, t] == res.energy_history[1, -1]


def test_nan_on_the_first_evaluation_is_flagged(rng):
    prior = StandardNormal(2)
    z0 = torch.tensor([[-1.0, 0.0], [4.0, 0.0]], dtype=torch.float64)
    z1 = torch.tensor([[1.0, 1.0], [4.0, 2.0]], dtype=torch.float64)

    def gen(x):  # NaN around the middle of path 1's linear start
        bad = (x[:, 1] > 0.5) & (x[:, 1] < 1.5) & (x[:, 0] > 3)
        return torch.where(bad[:, None], float("nan"), x)

    res = fastgeo.interpolate(gen, z0, z1, prior, n_points=5)
    assert res.status == ("converged", "nan")
    assert int(res.iterations[1]) == 0
    assert math.isinf(float(res.energy[1])) and math.isnan(res.path_log_index[1])


def test_zero_density_endpoints_raise():
    box = UniformBox([-1.0, -1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"path\(s\) \[1\].*zero density"):
        fastgeo.interpolate(identity, np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([[0.5, 0.5], [0.0, 0.0]]),
                            box)
    with pytest.raises(ValueError, match="zero density"):
        fastgeo.linear_path(identity, np.array([0.0, 3.0]), np.array([0.5, 0.5]), box)


@pytest.mark.parametrize("method", SOLVERS)
def test_box_is_never_left(rng, method):
    # trial steps that leave the support have infinite energy and are backtracked
    box = UniformBox([-1.0, -1.0], [1.0, 1.0])
    init = np.array([[-0.9, -0.9], [-0.2, 0.99], [0.5, 0.99], [0.9, 0.9]])
    res = fastgeo.interpolate(identity, init[0], init[-1], box, n_points=4, init=init, method=method)
    assert np.isfinite(res.energy) and (np.abs(res.path) <= 1).all()
    np.testing.assert_allclose(res.path, np.linspace(init[0], init[-1], 4), atol=1e-6)


@pytest.mark.parametrize("case, error, match", [
    ("shape_mismatch", ValueError, "same shape"),
    ("prior_dim", ValueError, "for this 3-dimensional prior"),
    ("ndim", ValueError, r"shape \(B, 3\)"),
    ("n_points_1", ValueError, "n_points"),
    ("n_points_float", ValueError, "n_points"),
    ("alpha_0", ValueError, "alpha"),
    ("alpha_1", ValueError, "alpha"),
    ("alpha_nan", ValueError, "alpha"),
    ("method", ValueError, "method"),
    ("mixed_libraries", TypeError, "numpy"),
    ("mixed_devices", ValueError, "device"),
    ("nan_endpoint", ValueError, "NaN"),
    ("integer_dtype_torch", TypeError, "float32 or float64"),
    ("wrong_batch", ValueError, "returned shape"),
    ("not_a_tensor", TypeError, "torch tensor"),
    ("not_differentiable", TypeError, "autograd"),
    ("output_device", ValueError, "never moves data"),
    ("prior_type", TypeError, "Prior"),
    ("generator_type", TypeError, "callable"),
    ("init_shape", ValueError, "init must have shape"),
    ("init_ends", ValueError, "end points"),
    ("init_library", TypeError, "init"),
    ("max_iter", ValueError, "max_iter"),
    ("gtol", ValueError, "gtol"),
])
def test_bad_input(case, error, match):
    prior = StandardNormal(3)
    z0 = torch.zeros(2, 3, dtype=torch.float64)
    z1 = torch.ones(2, 3, dtype=torch.float64)
    gen, kw = identity, {}
    if case == "shape_mismatch":
        z1 = torch.ones(3, 3, dtype=torch.float64)
    elif case == "prior_dim":
        z0, z1 = torch.zeros(2, 4, dtype=torch.float64), torch.ones(2, 4, dtype=torch.float64)
    elif case == "ndim":
        z0, z1 = torch.zeros(1, 2, 3, dtype=torch.float64), torch.ones(1, 2, 3, dtype=torch.float64)
    elif case == "n_points_1":
        kw["n_points"] = 1
    elif case == "n_points_float":
        kw["n_points"] = 10.0
    elif case.startswith("alpha"):
        kw["alpha"] = {"alpha_0": 0.0, "alpha_1": 1.0, "alpha_nan": float("nan")}[case]
    elif case == "method":
        kw["method"] = "adam"
    elif case == "mixed_libraries":
        z1 = np.ones((2, 3))
    elif case == "mixed_devices":
        z1 = torch.ones(2, 3, dtype=torch.float64, device="meta")
    elif case == "nan_endpoint":
        z0[1, 2] = float("nan")
    elif case == "integer_dtype_torch":
        z0, z1 = torch.zeros(2, 3, dtype=torch.int64), torch.ones(2, 3, dtype=torch.int64)
    elif case == "wrong_batch":
        gen = lambda x: x[:-1]  # noqa: E731
    elif case == "not_a_tensor":
        gen = lambda x: x.numpy()  # noqa: E731
    elif case == "not_differentiable":
        gen = lambda x: x.detach() * 2  # noqa: E731
    elif case == "output_device":
        gen = lambda x: torch.empty(x.shape, device="meta")  # noqa: E731
    elif case == "prior_type":
        prior = "normal"
    elif case == "generator_type":
        gen = "not callable"
    elif case == "init_shape":
        kw.update(n_points=5, init=torch.zeros(2, 4, 3, dtype=torch.float64))
    elif case == "init_ends":
        kw.update(n_points=5, init=torch.zeros(2, 5, 3, dtype=torch.float64))
    elif case == "init_library":
        kw.update(n_points=5, init=np.zeros((2, 5, 3)))
    elif case == "max_iter":
        kw["max_iter"] = -1
    elif case == "gtol":
        kw["gtol"] = -1.0
    with pytest.raises(error, match=match):
        fastgeo.interpolate(gen, z0, z1, prior, **kw)


def test_training_mode_generator_warns(rng):
    gen = mlp(rng, 2, 3).train()
    with pytest.warns(UserWarning, match="training mode"):
        fastgeo.interpolate(gen, torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64),
                            StandardNormal(2), n_points=4)


def test_default_alpha_keeps_every_segment_costly():
    # w = (log alpha + log rbar)^2 >= (log alpha)^2 = 1 with alpha = 1/e: no free segments
    assert fastgeo.DEFAULT_ALPHA == pytest.approx(math.exp(-1))
    prior = StandardNormal(2)
    z0, z1 = np.array([-0.05, 0.0]), np.array([0.05, 0.0])  # ri ~ 1 all along
    res = fastgeo.linear_path(identity, z0, z1, prior, n_points=3)
    np.testing.assert_allclose(res.energy, (res.distances ** 2).sum(), rtol=1e-2)


def test_default_alpha_trades_realism_against_even_steps():
    # The evidence for alpha = 1/e on the horseshoe: nearly all the path-index gain of
    # alpha -> 1, whose weights vanish where ri -> 1 so that the path rushes through the
    # realistic middle in a few long steps, while the steps stay nearly even; alpha -> 0
    # keeps even steps but gives most of the realism back.
    prior = semicircle(2)
    z0, z1 = np.array([4.0, 7.0]), np.array([4.0, -7.0])
    runs = {a: fastgeo.interpolate(identity, z0, z1, prior, n_points=22, alpha=a)
            for a in (1e-6, fastgeo.DEFAULT_ALPHA, 0.95)}
    unevenness = {a: r.distances.max() / r.distances.mean() for a, r in runs.items()}
    index = {a: r.path_log_index for a, r in runs.items()}
    low, default, high = 1e-6, fastgeo.DEFAULT_ALPHA, 0.95
    assert index[default] >= index[high] - 0.05 * abs(index[high])
    assert index[default] > index[low] + 5
    assert unevenness[default] < 1.6 < 2.2 < unevenness[high]


@pytest.mark.parametrize("max_runs", [None, 1])
def test_copy_rows_moves_the_rows_it_is_given(rng, max_runs):
    """The solver's row copy (runs of consecutive rows as slice copies, or one index_copy_
    past max_runs) equals index assignment, into a non-contiguous view as the solver uses."""
    from fastgeo._solver import copy_rows

    for _ in range(50):
        n = int(rng.integers(1, 10))
        full = torch.from_numpy(rng.standard_normal((10, 5, 3)))
        dst = full[:, 1:-1]
        src = torch.from_numpy(rng.standard_normal((10, 3, 3)))
        dst_rows, src_rows = (np.sort(rng.choice(10, n, replace=False)) for _ in range(2))
        want = full.clone()
        want[:, 1:-1][torch.from_numpy(dst_rows)] = src[torch.from_numpy(src_rows)]
        copy_rows(dst, dst_rows, src, src_rows, max_runs=max_runs)
        assert torch.equal(full, want)


def test_auto_is_gauss_newton_where_it_fits_else_lbfgs(rng, monkeypatch):
    """The default method "auto": "lbfgs-gn" up to AUTO_GAUSS_NEWTON_MAX_DIM latent dimensions,
    "lbfgs" above, and "lbfgs" where the Gauss-Newton blocks would not fit in memory;
    result.method names what ran, and its default max_iter is that method's."""
    from fastgeo.interpolation import AUTO_GAUSS_NEWTON_MAX_DIM, DEFAULT_MAX_ITER

    def run(d, **kw):
        w = torch.from_numpy(rng.standard_normal((d, 3)) / np.sqrt(d))
        gen = lambda x: torch.tanh(x @ w)  # noqa: E731
        z0, z1 = (torch.from_numpy(rng.standard_normal((2, d))) for _ in range(2))
        return fastgeo.interpolate(gen, z0, z1, StandardNormal(d), n_points=6, max_iter=kw.pop("max_iter", 2),
                                   progress=False, **kw)

    assert run(5).method == "lbfgs-gn"
    assert run(AUTO_GAUSS_NEWTON_MAX_DIM).method == "lbfgs-gn"
    assert run(AUTO_GAUSS_NEWTON_MAX_DIM + 1).method == "lbfgs"
    assert run(5, method="lbfgs").method == "lbfgs"
    limits = []
    real = fastgeo.interpolation.Solver

    def spy(problem, z0, z1, x0, method, alpha, max_iter, *args, **kw):
        limits.append((method, max_iter))
        return real(problem, z0, z1, x0, method, alpha, max_iter, *args, **kw)

    monkeypatch.setattr(fastgeo.interpolation, "Solver", spy)
    run(5, max_iter=None)
    run(AUTO_GAUSS_NEWTON_MAX_DIM + 1, max_iter=None)
    assert limits == [("lbfgs-gn", DEFAULT_MAX_ITER["lbfgs-gn"]), ("lbfgs", DEFAULT_MAX_ITER["lbfgs"])]

    monkeypatch.setattr(PathProblem, "gauss_newton_bytes", lambda self, *args, **kw: 2.0 ** 80)
    assert run(5, max_iter=2).method == "lbfgs"
    with pytest.raises(MemoryError, match="Gauss-Newton phase"):
        run(5, method="lbfgs-gn")


# -- several starts ------------------------------------------------------------------------------

def test_lowest_start_per_pair():
    from fastgeo._starts import lowest

    energy = torch.tensor([3.0, 1.0, float("nan"), float("inf"),   # start 0 of pairs 0..3
                           2.0, 5.0, 4.0, float("inf"),            # start 1
                           2.5, 0.5, float("inf"), float("nan")], dtype=torch.float64)
    rows, start = lowest(energy, 3)
    assert start.tolist() == [1, 2, 1, 0]  # a NaN or inf start never wins; none finite: start 0
    assert rows.tolist() == [4, 9, 6, 3]


@pytest.mark.parametrize("method", SOLVERS)
def test_starts_keep_the_lowest_of_separate_runs(rng, method):
    """starts=3 gives, per pair, the path and energy of the lowest of three runs started from
    the linear path and the two detours (fastgeo._starts.with_detours), and says which."""
    from fastgeo._starts import with_detours

    d, n_points, b = 3, 10, 4
    prior = StandardNormal(d)
    gen = mlp(rng, d, 4)
    z0 = torch.from_numpy(rng.standard_normal((b, d)) * 1.5)
    z1 = torch.from_numpy(rng.standard_normal((b, d)) * 1.5)
    seed = int(rng.integers(1000))
    res = fastgeo.interpolate(gen, z0, z1, prior, n_points=n_points, method=method, starts=3, seed=seed)
    t = torch.arange(1, n_points - 1, dtype=torch.float64) / (n_points - 1)
    x0 = (1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]
    inner = with_detours(x0, z0, z1, 3, seed, lambda z: fastgeo.log_ri(z, prior)).reshape(3, b, n_points - 2, d)
    runs = [fastgeo.interpolate(gen, z0, z1, prior, n_points=n_points, method=method,
                                init=torch.cat([z0[:, None], inner[s], z1[:, None]], dim=1)) for s in range(3)]
    energies = torch.stack([r.energy for r in runs])
    assert (inner[1:] != inner[0]).any(dim=(2, 3)).all()  # the detours are other paths
    assert res.start.dtype == torch.int64 and res.start.shape == (b,)
    torch.testing.assert_close(res.energy, energies.min(dim=0).values, rtol=1e-9, atol=0)
    for p in range(b):
        chosen = runs[int(res.start[p])]
        assert energies[int(res.start[p]), p] == energies[:, p].min()
        torch.testing.assert_close(res.path[p], chosen.path[p], rtol=1e-7, atol=1e-9)
        assert res.status[p] == chosen.status[p] and res.iterations[p] == chosen.iterations[p]
    assert res.n_forward > max(r.n_forward for r in runs)  # every start's cost is counted


def test_starts_stay_in_the_support_or_fall_back():
    """Detours that leave a bounded prior's support are halved until they fit, and where they
    cannot (a box thinner than any detour), the start is the linear path again."""
    from fastgeo._starts import with_detours

    box = UniformBox([-1.0, -1.0], [1.0, 1.0])
    z0 = torch.tensor([[-0.9, -0.9], [-0.9, 0.0]], dtype=torch.float64)
    z1 = torch.tensor([[0.9, 0.9], [0.9, 0.0]], dtype=torch.float64)
    t = torch.arange(1, 11, dtype=torch.float64) / 11
    x0 = (1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]
    starts = with_detours(x0, z0, z1, 6, 3, lambda z: fastgeo.log_ri(z, box)).reshape(6, 2, 10, 2)
    free = with_detours(x0, z0, z1, 6, 3, lambda z: fastgeo.log_ri(z, StandardNormal(2))).reshape(6, 2, 10, 2)
    assert (starts.abs() <= 1).all() and (free.abs() > 1).any()  # some detours had to shrink
    for s in range(1, 6):
        for p in range(2):
            ratio = float((starts[s, p] - x0[p]).norm() / (free[s, p] - x0[p]).norm())
            assert any(abs(ratio - 2.0 ** -m) < 1e-9 for m in range(9)) or torch.equal(starts[s, p], x0[p])
            assert (ratio == 1) == bool((free[s, p].abs() <= 1).all())
    flat = UniformBox([-1.0, -1e-12], [1.0, 1e-12])  # the second pair's line only
    kept = with_detours(x0[1:], z0[1:], z1[1:], 3, 3, lambda z: fastgeo.log_ri(z, flat)).reshape(3, 1, 10, 2)
    torch.testing.assert_close(kept, x0[1:].expand(3, 1, 10, 2))
    res = fastgeo.interpolate(identity, z0.numpy(), z1.numpy(), box, n_points=12, starts=4)
    assert isinstance(res.start, np.ndarray) and np.isfinite(res.energy).all() and (np.abs(res.path) <= 1).all()


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_bad_starts_and_seed(value):
    z0, z1 = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="starts"):
        fastgeo.interpolate(identity, z0, z1, StandardNormal(3), n_points=5, starts=value)
    if value != 0:
        with pytest.raises(ValueError, match="seed"):
            fastgeo.interpolate(identity, z0, z1, StandardNormal(3), n_points=5, seed=value)


def test_one_start_is_start_zero_and_unbatched_keeps_its_shape(rng):
    z0, z1 = rng.standard_normal(3), rng.standard_normal(3)
    one = fastgeo.interpolate(identity, z0, z1, StandardNormal(3), n_points=6)
    assert one.start.shape == () and one.start == 0
    two = fastgeo.interpolate(identity, torch.from_numpy(z0).float(), torch.from_numpy(z1).float(),
                              StandardNormal(3), n_points=6, starts=2)
    assert two.path.dtype == torch.float32 and two.start.shape == () and two.start.dtype == torch.int64
    assert fastgeo.linear_path(identity, z0, z1, StandardNormal(3), n_points=6).start is None


def test_a_pair_gets_the_same_detours_in_any_batch(rng):
    from fastgeo._starts import with_detours

    d, b = 4, 3
    z0, z1 = torch.from_numpy(rng.standard_normal((b, d))), torch.from_numpy(rng.standard_normal((b, d)))
    t = torch.arange(1, 7, dtype=torch.float64) / 7
    x0 = (1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]

    def detours(rows, seed=5):
        out = with_detours(x0[rows], z0[rows], z1[rows], 3, seed, lambda z: fastgeo.log_ri(z, StandardNormal(d)))
        return out.reshape(3, len(rows), 6, d)

    everyone = detours([0, 1, 2])
    torch.testing.assert_close(detours([2])[:, 0], everyone[:, 2], rtol=0, atol=0)
    torch.testing.assert_close(detours([2, 0])[:, 1], everyone[:, 0], rtol=0, atol=0)
    assert not torch.equal(detours([0, 1, 2], seed=6), everyone)
    assert not torch.equal(everyone[1:, 0] - x0[0], everyone[1:, 1] - x0[1])  # pairs differ


def test_starts_with_two_points_and_a_start_through_zero_density(rng):
    z0, z1 = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    two = fastgeo.interpolate(identity, z0, z1, StandardNormal(3), n_points=2, starts=3)
    assert two.path.shape == (2, 2, 3) and two.start.tolist() == [0, 0]
    box = UniformBox([-1.0, -1.0], [1.0, 1.0])
    ends = np.array([[[-0.5, 0.0], [0.5, 0.0]], [[-0.5, 0.5], [0.5, 0.5]]])
    init = np.stack([np.linspace(e[0], e[1], 5) for e in ends])
    init[1, 2] = [0.0, 3.0]  # pair 1's start leaves the box
    with pytest.raises(ValueError, match=r"initial path of path\(s\) \[1\] "):
        fastgeo.interpolate(identity, ends[:, 0], ends[:, 1], box, n_points=5, init=init, starts=3)
