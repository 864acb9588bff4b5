"""The benchmark definitions (fastgeo.benchmarks): each check accepts what its implementations
return and rejects a wrong result, on tiny shapes; a wrong result is reported, not timed; and
bench/ has one home for its definitions (no second describe_machine, no sys.path edits, a
check beside every timing)."""
import ast
import dataclasses
import pathlib

import numpy as np
import pytest

from fastgeo import benchmarks, cli
from fastgeo.benchmarks import WrongResult, interpolate, kde_cdf, path_energy, radial_ri

ROOT = pathlib.Path(__file__).resolve().parents[1]


def nudged(x, relative):
    """A float64 copy of array x with its first entry off by ``relative`` times its largest entry."""
    x = np.array(x, dtype=np.float64, copy=True)
    x.flat[0] += relative * (np.abs(x).max() or 1.0)
    return x


# -- radial ri ---------------------------------------------------------------------------------

@pytest.fixture
def radial_case(rng):
    z = radial_ri.points(rng, 100, 16)
    prior = radial_ri.standard_normal(16)
    return z, prior, radial_ri.reference(z, prior)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_radial_check_accepts_fastgeo_ri_and_rejects_a_wrong_one(radial_case, backend):
    z, prior, truth = radial_case
    result = radial_ri.fastgeo_ri(z, prior, backend)
    radial_ri.check(result, truth)
    with pytest.raises(WrongResult, match="radial ri"):
        radial_ri.check(nudged(result, 1e-3), truth)
    with pytest.raises(WrongResult, match="fewer than"):
        radial_ri.check(result[:10], truth)


def test_radial_check_accepts_scipy_references(radial_case):
    z, _, truth = radial_case
    radial_ri.check(radial_ri.scipy_chi2_sf(z, 16), truth)
    loose = radial_ri.RTOL_FLOAT32_NORMS
    radial_ri.check(radial_ri.scipy_chi2_sf(z, 16, np.float32), truth, rtol=loose)
    with pytest.raises(WrongResult):
        radial_ri.check(nudged(radial_ri.scipy_chi2_sf(z, 16, np.float32), 10 * loose), truth, rtol=loose)


# -- KDE ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_kde():
    kde = kde_cdf.semicircle_kde(200)
    return kde, kde_cdf.spread_queries(kde, 300, seed=1)


@pytest.mark.parametrize("what", kde_cdf.QUERIES)
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_kde_check_accepts_each_query_and_rejects_a_wrong_one(small_kde, what, backend):
    kde, x = small_kde
    truth = kde_cdf.reference(kde, x, what)
    result = kde_cdf.fastgeo_query(kde, x, what, backend)
    kde_cdf.check(result, truth, what)
    if what == "log_cdf_and_hazard":
        wrong = [(nudged(result[0], 1e-6), result[1]), (result[0], nudged(result[1], 1e-5))]
    else:
        wrong = [nudged(result, 1e-6)]
    for bad in wrong:
        with pytest.raises(WrongResult, match="KDE"):
            kde_cdf.check(bad, truth, what)


def test_kde_naive_sums_pass_and_a_wrong_table_fails(small_kde):
    kde, x = small_kde
    truth = {what: kde_cdf.reference(kde, x, what) for what in ("cdf", "log_cdf")}
    kde_cdf.check(kde_cdf.naive_kde_cdf(x, kde.samples, kde.bandwidth), truth["cdf"], "cdf")
    kde_cdf.check(kde_cdf.naive_kde_log_cdf(x, kde.samples, kde.bandwidth), truth["log_cdf"], "log_cdf")
    table = kde_cdf.build_table(kde)
    kde_cdf.check_table(table, kde, x, truth["cdf"])
    wrong = dataclasses.replace(table, coef=table.coef * (1 + 1e-6))
    with pytest.raises(WrongResult, match="KDE cdf"):
        kde_cdf.check_table(wrong, kde, x, truth["cdf"])


# -- path energy -------------------------------------------------------------------------------

@pytest.fixture(params=["random walk", "noise"])
def path_case(request, rng):
    make = path_energy.random_walk_inputs if request.param == "random walk" else path_energy.noise_inputs
    decoded, log_ri = make(rng, 3, 6, 40)
    return decoded, log_ri, path_energy.reference(decoded, log_ri, path_energy.ALPHA)


def path_implementations(decoded, log_ri):
    alpha = path_energy.ALPHA
    yield "cpu", path_energy.fastgeo_energy_and_grads(decoded, log_ri, alpha, "cpu")
    yield "reference", path_energy.fastgeo_energy_and_grads(decoded, log_ri, alpha, "reference")
    yield "fastgeo autograd", path_energy.fastgeo_autograd(*path_energy.torch_leaves(decoded, log_ri), alpha)
    yield "torch eager", path_energy.torch_eager_energy_and_grads(*path_energy.torch_leaves(decoded, log_ri),
                                                                  alpha)
    yield "preallocated pass", path_energy.preallocated_pass(decoded, log_ri, alpha)()


def test_path_check_accepts_every_implementation_and_rejects_wrong_ones(path_case):
    decoded, log_ri, truth = path_case
    for name, result in path_implementations(decoded, log_ri):
        path_energy.check(result, truth)
        for i, got in enumerate(result):
            if got is None:
                continue
            got = got.detach().numpy() if hasattr(got, "detach") else got
            wrong = list(result)
            wrong[i] = nudged(got, 1e-2)
            with pytest.raises(WrongResult, match="path energy"):
                path_energy.check(tuple(wrong), truth)
    with pytest.raises(WrongResult, match="no array"):
        path_energy.check((None, None, None), truth)


# -- interpolate -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def solved():
    gen = interpolate.mlp(3, 16, 10, seed=0)
    z0, z1, prior = interpolate.normal_endpoints(2, 3, seed=5)
    result = interpolate.solve(gen, z0, z1, prior, n_points=6, iterations=3)
    return gen, z0, z1, prior, result, interpolate.reference(gen, z0, z1, prior, 6)


def test_interpolate_check_accepts_a_solve_and_rejects_wrong_ones(solved):
    *_, result, truth = solved
    interpolate.check(result, truth)
    with pytest.raises(WrongResult, match="decoded path"):  # the energy is not that of the path
        interpolate.check(dataclasses.replace(result, energy=result.energy * 0.9), truth)
    with pytest.raises(WrongResult, match="linear path"):  # did not start where the solver starts
        interpolate.check(result, truth * 1.1)
    up = result.energy_history.clone()
    up[:, 1] = 1.5 * up[:, 0]
    with pytest.raises(WrongResult, match="went up"):
        interpolate.check(dataclasses.replace(result, energy_history=up), truth)
    with pytest.raises(WrongResult, match="last energy"):
        interpolate.check(dataclasses.replace(result, energy_history=result.energy_history * 1.01), truth * 1.01)


def test_generator_alone_check(solved):
    gen, z0, z1, *_ = solved
    x = interpolate.linear_free_points(z0, z1, 6)
    vjp = interpolate.generator_alone(gen, x, 2)
    truth = interpolate.vjp_reference(gen, x)
    interpolate.check_vjp(vjp, truth)
    with pytest.raises(WrongResult, match="VJP"):
        interpolate.check_vjp(nudged(vjp.numpy(), 0.1), truth)


# -- special functions -------------------------------------------------------------------------

def test_special_function_checks():
    from fastgeo.benchmarks import special_functions as sf

    for name, a, x in sf.gamma_cases(300):
        out = sf.fastgeo_log_gamma_q(a, x, np.empty_like(x))
        ref = sf.scipy_gamma_logsf(x, a)
        sf.check(out, ref)
        sf.check_log_sf_properties(ref, x)
        with pytest.raises(WrongResult):
            sf.check(out + 1e-6 * np.abs(out).max(), ref)
        with pytest.raises(WrongResult, match="increases"):
            sf.check_log_sf_properties(np.sort(ref), np.sort(x))
    s = sf.f_family_radii(10.0, 512, 300)
    out = sf.fastgeo_log_beta_i(5.0, 256.0, *sf.f_family_log_inputs(10.0, s), np.empty_like(s))
    ref = sf.scipy_f_logsf(s, 10.0, 512)
    sf.check(out, ref)
    sf.check_log_sf_properties(ref, s)
    with pytest.raises(WrongResult, match="positive"):
        sf.check_log_sf_properties(-ref, s)


# -- a wrong result is reported, not timed -----------------------------------------------------

def test_a_wrong_result_has_no_time_and_fails_fastgeo_bench(monkeypatch, tmp_path, capsys):
    right = radial_ri.scipy_chi2_sf
    monkeypatch.setattr(radial_ri, "scipy_chi2_sf", lambda z, dim: 1.01 * right(z, dim))
    result = benchmarks.run(size="tiny", only=["radial"], devices=["cpu"], repeats=1, progress=False)
    rows = {r["implementation"]: r for r in result["rows"]}
    scipy = rows["scipy.stats.chi2.sf(float64 row norms)"]
    assert scipy["seconds"] is None and scipy["note"].startswith("wrong result: radial ri:")
    assert all(r["seconds"] for name, r in rows.items() if not name.startswith("scipy"))
    assert cli.main(["bench", "--size", "tiny", "--only", "radial", "--device", "cpu", "--repeats", "1",
                     "--out", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "scipy.stats.chi2.sf(float64 row norms) (cpu): wrong result" in err


def test_runner_checks_the_warm_up_result_once():
    runner = benchmarks.Runner(repeats=2, progress=False)
    device = benchmarks.Device("cpu")
    seen = []
    row = runner.measure("b", "ok", device, "kernel", lambda n: (lambda: np.arange(n)), 5, check=seen.append)
    assert row.seconds > 0 and len(seen) == 1 and list(seen[0]) == [0, 1, 2, 3, 4]
    copy = device.copier(np.arange(4.0))()
    assert list(copy) == [0.0, 1.0, 2.0, 3.0]  # the copier's call returns its copy, for the check


# -- bench/ has one home for its definitions ---------------------------------------------------

def test_bench_scripts_import_the_package_not_each_other():
    for path in sorted((ROOT / "bench").glob("*.py")):
        text = path.read_text()
        assert "from conftest import" not in text and "import solver_models" not in text, path.name
        if path.name != "gpu_bench.py":  # it puts its own checkout first, to run uninstalled
            assert "sys.path.insert" not in text, path.name
    defined = [p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("fastgeo/**/*.py"), *ROOT.glob("bench/*.py")]
               if "def describe_machine(" in p.read_text()]
    assert defined == ["fastgeo/benchmarks/machine.py"]


def calls(node):
    """Names of the functions called in node (the last part of a dotted name)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            f = sub.func
            yield f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def test_every_timing_in_bench_is_checked():
    """A function of bench/test_bench_*.py that times (benchmark(...) or benchmark.pedantic(...))
    also calls a check; copy_bench checks its copy itself."""
    timings = 0
    for path in sorted((ROOT / "bench").glob("test_bench_*.py")):
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef):
                continue
            called = {name for statement in fn.body for name in calls(statement)}  # not the decorators
            if {"benchmark", "pedantic"} & called:
                timings += 1
                assert any("check" in name for name in called), f"{path.name}::{fn.name} times without a check"
    assert timings >= 10


def test_public_names_stay_importable():
    for name in ("SIZES", "BENCHMARKS", "CPU_INTERPOLATE_PATHS", "Row", "Runner", "Device", "describe_machine",
                 "describe_device", "available_devices", "backends_for", "bench_radial", "bench_kde",
                 "bench_path", "bench_interpolate", "naive_kde_cdf", "torch_path_energy", "summarize",
                 "COLUMNS", "table_rows", "markdown", "to_csv", "run", "write"):
        assert hasattr(benchmarks, name), name
