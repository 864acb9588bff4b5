"""The package's structure: no import cycle anywhere in fastgeo, and one array layer that a
new array type is taught to in one place."""
import ast
import os

import numpy as np
import pytest

import fastgeo
from array_standins import use_array_library
from fastgeo import _arrays, priors
from fastgeo._arrays import ArrayKind, ArrayLibrary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: where each package's files are (fastgeo.kernels is the top-level kernels/ folder)
PACKAGES = {"fastgeo": os.path.join(ROOT, "fastgeo"), "fastgeo.kernels": os.path.join(ROOT, "kernels")}


def modules():
    """{module name: path} of every module of fastgeo, fastgeo.kernels included."""
    found = {}
    for package, folder in PACKAGES.items():
        for here, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if d not in ("__pycache__", "tools")]
            rel = os.path.relpath(here, folder)
            if package == "fastgeo" and rel.split(os.sep)[0] == "kernels":
                continue
            prefix = package if rel == "." else f"{package}.{rel.replace(os.sep, '.')}"
            for name in files:
                if name.endswith(".py"):
                    found[prefix if name == "__init__.py" else f"{prefix}.{name[:-3]}"] = os.path.join(here, name)
    return found


def imports_of(name, path, known):
    """The fastgeo modules that module ``name`` imports, at any depth of its code (imports
    inside functions count: they close a cycle as surely, only later), with the packages
    whose __init__ an import runs on the way (except ``name``'s own packages, fastgeo
    included: they are already importing when any module inside them is)."""
    is_package = path.endswith("__init__.py")
    base = name if is_package else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                source = f"{parent}.{node.module}" if node.module else parent
            else:
                source = node.module or ""
            candidates = [source] + [f"{source}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for target in candidates:
            while target and target not in known:
                target = target.rpartition(".")[0]
            while target and target != "fastgeo":
                if target != name and not name.startswith(target + "."):
                    targets.add(target)
                target = target.rpartition(".")[0]
    return targets


def find_cycle(graph):
    """One import cycle of ``graph`` as a list of modules (first == last), or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, stack)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def import_graph():
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_no_import_cycle_in_fastgeo():
    graph = import_graph()
    assert "fastgeo._evaluator" in graph and "fastgeo.kernels.families" in graph  # the walk saw both trees
    assert "fastgeo.priors.base" in graph["fastgeo.realism"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles_inside_functions(tmp_path, monkeypatch):
    """The check above can fail: a cycle closed by an import inside a function is found."""
    pkg = tmp_path / "fastgeo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .a import f\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from ..b import g\n    return g\n")
    (pkg / "b.py").write_text("from .sub import f\n")
    monkeypatch.setitem(PACKAGES, "fastgeo", str(pkg))
    monkeypatch.setitem(PACKAGES, "fastgeo.kernels", str(tmp_path / "none"))
    cycle = find_cycle(import_graph())
    assert cycle is not None and {"fastgeo.b", "fastgeo.sub.a"} <= set(cycle)


# -- the array layer: a new array type is taught in one place -------------------------------------

class Boxed:
    """A stand-in array type: a float array in a box, as a foreign library's array would be."""

    def __init__(self, values):
        self.values = values

    @property
    def shape(self):
        return self.values.shape


class BoxedLibrary(ArrayLibrary):
    """Everything fastgeo needs to know about Boxed: recognise it, compute on the numpy array
    inside, hand results back boxed."""

    name = "boxed"

    def owns(self, x):
        return isinstance(x, Boxed)

    def compute_view(self, x, kind, name):
        return super().compute_view(x.values, kind, name)

    def wrap(self, arr, kind):
        return Boxed(arr)


@pytest.fixture
def boxed(monkeypatch):
    return use_array_library(monkeypatch, BoxedLibrary())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_registered_array_type_runs_through_every_public_function(rng, boxed, dtype):
    d = 4
    z = (rng.standard_normal((3, 5, d)) * 1.7).astype(dtype)
    assert _arrays.kind_of(Boxed(z)) == ArrayKind("boxed", "cpu")
    for prior in (priors.Gaussian(rng.standard_normal(d), rng.uniform(0.5, 2, d)), priors.semicircle(d, kde_samples=400)):
        out = fastgeo.log_ri(Boxed(z), prior)
        assert isinstance(out, Boxed) and out.values.dtype == dtype and out.shape == (3, 5)
        np.testing.assert_array_equal(out.values, fastgeo.log_ri(z, prior))
        np.testing.assert_array_equal(fastgeo.ri(Boxed(z), prior).values, fastgeo.ri(z, prior))
        lr, grad = fastgeo.log_ri_and_grad(Boxed(z), prior)
        np.testing.assert_array_equal(grad.values, fastgeo.log_ri_and_grad(z, prior)[1])
        np.testing.assert_array_equal(prior.log_prob(Boxed(z)).values, prior.log_prob(z))
    G = np.cumsum(rng.standard_normal((2, 6, 7)), axis=1).astype(dtype)
    l = rng.uniform(-20, -0.1, (2, 6))
    energy = fastgeo.path_energy(Boxed(G), Boxed(l), 0.5)
    assert isinstance(energy, Boxed)
    np.testing.assert_array_equal(energy.values, fastgeo.path_energy(G, l, 0.5))
    with pytest.raises(TypeError, match="decoded is a boxed array but log_ri is a numpy array"):
        fastgeo.path_energy(Boxed(G), l, 0.5)


def test_registering_a_name_twice_is_refused(boxed):
    with pytest.raises(ValueError, match="'boxed' is already registered"):
        _arrays.register(BoxedLibrary())


# -- layers: imports point down docs/ARCHITECTURE.md's table ----------------------------------------

#: the layers of docs/ARCHITECTURE.md, top to bottom (keep the two in step)
LAYERS = [
    ("command line", ["fastgeo.cli", "fastgeo.commands", "fastgeo.__main__"]),
    ("runs and reports", ["fastgeo.runstore", "fastgeo.compare", "fastgeo.report", "fastgeo.endpoints",
                          "fastgeo.models", "fastgeo.generators", "fastgeo.many", "fastgeo._many_inputs",
                          "fastgeo._many_worker", "fastgeo._cluster", "fastgeo.zarrstore"]),
    ("interpolation", ["fastgeo.interpolation", "fastgeo._starts", "fastgeo.baselines", "fastgeo._result", "fastgeo.nn"]),
    ("solver", ["fastgeo._path_problem", "fastgeo._solver"]),
    ("points and paths", ["fastgeo.realism", "fastgeo.path", "fastgeo.kde", "fastgeo.priors", "fastgeo._info",
                          "fastgeo.special"]),
    ("evaluator", ["fastgeo._evaluator", "fastgeo._dask"]),
    ("backends", ["fastgeo.backends"]),
    ("index specs", ["fastgeo._specs"]),
    ("kernels", ["fastgeo.kernels"]),
    ("arrays and support", ["fastgeo._arrays", "fastgeo._config", "fastgeo._errors", "fastgeo._lazy",
                            "fastgeo._buffers"]),
]
BESIDE = ("benchmarks (beside)", ["fastgeo.benchmarks"])


def layer_of(module):
    for i, (_, prefixes) in enumerate(LAYERS + [BESIDE]):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def test_every_module_has_a_layer_and_imports_only_down():
    graph = import_graph()
    beside = len(LAYERS)
    unplaced = sorted(m for m in graph if m != "fastgeo" and layer_of(m) is None)
    assert not unplaced, f"modules in no layer of docs/ARCHITECTURE.md: {unplaced}"
    upward = [f"{m} -> {t}" for m, targets in graph.items() if m != "fastgeo" for t in targets
              if layer_of(m) != beside and layer_of(t) != beside and layer_of(t) < layer_of(m)]
    assert not upward, "imports that point up the layers: " + "; ".join(sorted(upward))
    importers = sorted(m for m, targets in graph.items() if layer_of(m) not in (0, beside) and m != "fastgeo"
                       and any(layer_of(t) == beside for t in targets))
    assert not importers, f"only the command line imports the benchmarks: {importers}"


def test_the_layers_are_the_ones_the_architecture_map_shows():
    text = open(os.path.join(ROOT, "docs", "ARCHITECTURE.md")).read()
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and "`" in line]
    assert rows == [name for name, _ in LAYERS + [BESIDE]]


# -- the priors' contract ----------------------------------------------------------------------------

class Laplace(priors.Prior):
    """A user's prior written to the contract alone: prod_i exp(-|z_i|) / 2, no closed-form index."""

    def _sample(self, n, rng):
        return rng.laplace(size=(n, self.dim))

    def log_density(self, z, need_grad=False, kind=priors.base.CPU):
        lp = -np.abs(z).sum(axis=1) - self.dim * np.log(2.0)
        return lp, (-np.sign(z) if need_grad else None)


def test_a_prior_written_to_the_contract_gets_the_kde_index_and_its_gradient(rng):
    prior = Laplace(3, kde_samples=800)
    z = rng.laplace(size=(40, 3)) * 1.5
    lp = prior.log_prob(z)
    np.testing.assert_allclose(lp, -np.abs(z).sum(axis=1) - 3 * np.log(2.0), rtol=1e-15)
    out, grad = fastgeo.log_ri_and_grad(z, prior)
    ref = fastgeo.log_ri(z, prior, backend="reference")
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12)
    # the gradient is the KDE's (g_W / G_W)(log f) times grad log f, by central differences
    eps, i = 1e-6, 7
    for j in range(3):
        step = np.zeros(3)
        step[j] = eps
        fd = (fastgeo.log_ri(z[i] + step, prior) - fastgeo.log_ri(z[i] - step, prior)) / (2 * eps)
        np.testing.assert_allclose(grad[i, j], fd, rtol=1e-5, atol=1e-8)


def test_a_prior_without_its_log_density_cannot_be_made():
    class NoDensity(priors.Prior):
        def _sample(self, n, rng):
            return rng.standard_normal((n, self.dim))

    with pytest.raises(TypeError, match="abstract.*log_density"):
        NoDensity(2)


def test_priors_written_to_the_former_contract_still_work(rng):
    """Before log_density, a prior implemented _log_prob_np, or only a closed-form index()."""
    with pytest.warns(DeprecationWarning, match="implement log_density"):
        class OldLaplace(priors.Prior):
            def _sample(self, n, rng):
                return rng.laplace(size=(n, self.dim))

            def _log_prob_np(self, z, need_grad):
                lp = -np.abs(z).sum(axis=1) - self.dim * np.log(2.0)
                return lp, (-np.sign(z) if need_grad else None)

    z = rng.laplace(size=(30, 3)) * 1.3
    old, new = OldLaplace(3, kde_samples=700), Laplace(3, kde_samples=700)
    np.testing.assert_array_equal(old.log_prob(z), new.log_prob(z))
    for got, want in zip(fastgeo.log_ri_and_grad(z, old), fastgeo.log_ri_and_grad(z, new)):
        np.testing.assert_array_equal(got, want)

    class ClosedForm(priors.Prior):  # a standard normal by its index alone
        def __init__(self, dim):
            super().__init__(dim)
            self._spec = priors.StandardNormal(dim).index()

        def _sample(self, n, rng):
            return rng.standard_normal((n, self.dim))

        def index(self):
            return self._spec

    normal = priors.StandardNormal(3)
    np.testing.assert_allclose(ClosedForm(3).log_prob(z), normal.log_prob(z), rtol=1e-14)
    np.testing.assert_array_equal(ClosedForm(3)._log_prob_np(z, False)[0], ClosedForm(3).log_prob(z))
    np.testing.assert_array_equal(fastgeo.log_ri(z, ClosedForm(3)), fastgeo.log_ri(z, normal))
