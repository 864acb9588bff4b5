"""Every CUDA kernel, and every shared scalar function, compiles to PTX without a GPU:
kernels for sm_90 and an older arch (sm_75), scalar functions for sm_90. The KDE's scalar
functions take arrays (the table): they are compiled inside the two KDE kernels, which call
every one of them that a query needs (the table builders run on the host only).

Numba asks the current device for its compute capability while compiling device functions,
so the test lends it a stand-in device for the duration of each compile. Where ptxas is
installed (CUDA toolkit), the PTX is also assembled for sm_90, which checks that it is valid.
Skipped, with the reason, when numba-cuda or its compilers (NVVM, NVRTC) are missing.
"""
import importlib.util
import os
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                                reason="numba-cuda is not installed (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def compiler():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        pytest.skip("NUMBA_ENABLE_CUDASIM=1: no PTX compilation under the simulator")
    from fastgeo.backends.cuda import compiler_unavailable_reason

    reason = compiler_unavailable_reason()
    if reason:
        pytest.skip(f"cannot compile CUDA kernels here: {reason}")
    from numba import cuda

    return cuda


class _Device:
    def __init__(self, cc):
        self.compute_capability = cc


def compile_ptx(cuda, monkeypatch, pyfunc, signature, cc):
    import numba.cuda.dispatcher as dispatcher

    monkeypatch.setattr(dispatcher, "get_current_device", lambda: _Device(cc))
    ptx, _ = cuda.compile_ptx(pyfunc, signature, cc=cc)
    return ptx


def modules():
    from fastgeo.kernels import cuda_box, cuda_kde, cuda_mixture, cuda_path, cuda_radial

    return (cuda_radial, cuda_box, cuda_kde, cuda_path, cuda_mixture)


def kernels():
    return [(mod, name) for mod in modules() for name in mod.KERNELS]


def module_of(name):
    return next(mod for mod in modules() if name in mod.KERNELS)


def signature(name, dtype, layout):
    mod = module_of(name)
    if mod.__name__.endswith(("cuda_radial", "cuda_box")):
        return mod.signature(dtype, layout)
    return mod.signature(name, dtype, layout)


#: kernels that read the caller's array (its dtype and strides matter): five variants each
READERS = ("radial_narrow", "radial_wide", "box_narrow", "box_wide", "kde_table_pass", "kde_exact_pass",
           "path_pass", "mixture_rows")
#: kernels on float64 scratch only (the input's dtype is at most an output's): two variants
INNER = ("path_log_a", "path_energy_reduce", "path_log_index_reduce")
#: kernels whose float32 input is widened before any arithmetic
WIDENED = ("radial_narrow", "radial_wide", "path_pass", "mixture_rows")
CASES = ([(name, dtype, layout, cc) for name in READERS
          for dtype, layout, cc in (("float32", "C", (9, 0)), ("float64", "C", (9, 0)),
                                    ("float32", "A", (9, 0)), ("float32", "C", (7, 5)),
                                    ("float64", "A", (7, 5)))]
         + [(name, dtype, "C", cc) for name in INNER
            for dtype, cc in (("float32", (9, 0)), ("float64", (7, 5)))])


#: PTX by (kernel, dtype, layout, cc): the assembly test and the register test reuse the
#: compiles of the PTX test (the radial kernels take tens of seconds each)
_PTX = {}


def compile_kernel(cuda, monkeypatch, name, dtype, layout, cc):
    key = (name, dtype, layout, cc)
    if key not in _PTX:
        _PTX[key] = _compile_kernel(cuda, monkeypatch, name, dtype, layout, cc)
    return _PTX[key]


def _compile_kernel(cuda, monkeypatch, name, dtype, layout, cc):
    mod = module_of(name)
    bounds = getattr(mod, "LAUNCH_BOUNDS", {}).get(name)
    import numba.cuda.dispatcher as dispatcher

    monkeypatch.setattr(dispatcher, "get_current_device", lambda: _Device(cc))
    ptx, _ = cuda.compile_ptx(mod.KERNELS[name].py_func, signature(name, dtype, layout), cc=cc,
                              launch_bounds=bounds)
    return ptx


@pytest.mark.parametrize("name,dtype,layout,cc", CASES)
def test_kernel_compiles_to_ptx(compiler, monkeypatch, name, dtype, layout, cc):
    ptx = compile_kernel(compiler, monkeypatch, name, dtype, layout, cc)
    assert re.search(rf"^\.target sm_{cc[0]}{cc[1]}\b", ptx, re.M), ptx[:400]
    assert re.search(rf"\.visible \.entry \S*{name}", ptx)
    if name in READERS:  # the input is read as its own dtype (global loads; generic ones for any strides)
        assert re.search(rf"\bld\.(global\.)?(nc\.)?f{dtype[-2:]}\b", ptx)
    if name in WIDENED:  # float32 entries are widened first: no float32 arithmetic at all
        assert not re.search(r"\b(fma|mul|add|sub)(\.rn)?(\.ftz)?\.f32\b", ptx)
    if name.endswith("wide"):  # the shared tables of the wide kernels are static and sized at build
        from fastgeo.kernels.cuda_launch import PADDED, WARP, WARPS

        item = 8 if name.startswith("radial") else 4
        assert f"[{WARPS * WARP * PADDED * item}]" in ptx
    bounds = getattr(module_of(name), "LAUNCH_BOUNDS", {}).get(name)
    if bounds:  # the register budget that lets that many blocks share a multiprocessor
        assert re.search(rf"\.maxntid {bounds[0]}, 1, 1", ptx)
        assert re.search(rf"\.minnctapersm {bounds[1]}", ptx)
    if name.startswith(("kde", "path")):  # no atomics on floating-point data (fixed summation order)
        assert not re.search(r"\batom\.[a-z.]*\.f(32|64)\b", ptx)


def test_the_table_pass_leaves_the_exact_sums_out(compiler, monkeypatch):
    """The KDE's first pass is the interpolants alone: the exact sums (erfc, the loops over the
    samples) are compiled into the second pass only, so the first stays small in registers."""
    table = compile_kernel(compiler, monkeypatch, "kde_table_pass", "float64", "C", (9, 0))
    exact = compile_kernel(compiler, monkeypatch, "kde_exact_pass", "float64", "C", (9, 0))
    assert 4 * len(table) < len(exact)


def test_the_list_of_kernels_is_complete():
    """CASES covers every kernel the modules export (a new kernel must be added here)."""
    assert sorted({c[0] for c in CASES}) == sorted(name for _, name in kernels())


@pytest.mark.skipif(shutil.which("ptxas") is None and not os.path.exists("/usr/local/cuda/bin/ptxas"),
                    reason="ptxas (CUDA toolkit) not found")
@pytest.mark.parametrize("name", READERS + INNER)
def test_ptx_assembles_for_sm90(compiler, monkeypatch, tmp_path, name):
    ptx = compile_kernel(compiler, monkeypatch, name, "float32", "C", (9, 0))
    source = tmp_path / f"{name}.ptx"
    source.write_text(ptx)
    ptxas = shutil.which("ptxas") or "/usr/local/cuda/bin/ptxas"
    proc = subprocess.run([ptxas, "-arch=sm_90", "-v", str(source), "-o", str(tmp_path / f"{name}.cubin")],
                          capture_output=True, text=True)
    if proc.returncode != 0 and "Unsupported .version" in proc.stderr:
        pytest.skip(f"ptxas is older than the PTX ISA NVVM emitted: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr
    print(proc.stderr)  # registers, spills and shared memory, for the record


def scalar_functions():
    """Every @njit function defined in the shared scalar modules (the one source of the math)."""
    import inspect

    from numba.core.registry import CPUDispatcher

    from fastgeo.kernels import path, radial, special

    return [(mod.__name__.rsplit(".", 1)[-1], name, len(inspect.signature(obj.py_func).parameters))
            for mod in (special, radial, path) for name, obj in vars(mod).items()
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == mod.__name__]


@pytest.mark.parametrize("module,name,arity", scalar_functions())
def test_scalar_function_compiles_for_cuda(compiler, monkeypatch, module, name, arity):
    """special.py, radial.py and path.py promise scalar math that compiles for the GPU too: each function
    is called from a one-thread kernel with float64 arguments and compiled to PTX."""
    import importlib

    from numba import float64, types

    fn = getattr(importlib.import_module(f"fastgeo.kernels.{module}"), name)
    args = ", ".join(f"a{i}" for i in range(arity))
    # functions returning several numbers store each of them
    argtys = (float64,) * arity
    fn.compile(argtys)
    returns = fn.overloads[argtys].signature.return_type
    n_out = len(returns) if isinstance(returns, types.BaseTuple) else 0
    stores = ("".join(f"    out[{i}] = r[{i}]\n" for i in range(n_out)) if n_out else "    out[0] = r\n")
    scope = {"fn": fn}
    exec(f"def kernel(out, {args}):\n    r = fn({args})\n{stores}", scope)
    signature = "void(float64[::1], " + ", ".join(["float64"] * arity) + ")"
    ptx = compile_ptx(compiler, monkeypatch, scope["kernel"], signature, (9, 0))
    assert ".visible .entry" in ptx
