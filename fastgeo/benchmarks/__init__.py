"""Kernel benchmarks beside the references users would otherwise reach for: the one home of
the benchmark definitions, used by ``fastgeo bench`` (the CLI), ``bench/gpu_bench.py`` (the
GPU run) and the pytest-benchmark files and scripts of ``bench/``.

Each benchmark module holds its input builders, the implementations it compares, a float64
reference and a ``check`` that every timed result passes once, outside the timed calls
(:mod:`.checks`):

- :mod:`.radial_ri` (``radial-ri``): ``fastgeo.ri`` of a standard normal prior on (M, D)
  float32 points; references ``scipy.stats.chi2.sf`` of float64 row norms (CPU),
  ``torch.special.gammaincc`` (GPU).
- :mod:`.kde_cdf` (``kde-cdf``): ``fastgeo.KDE(samples).cdf`` at Q queries, n samples;
  reference the naive numpy sum ``mean(ndtr((x - l_i) / h))``.
- :mod:`.path_energy` (``path-energy``): ``fastgeo.energy_and_grads`` of B paths of K+1
  points decoded to N values; references torch eager autograd of the same energy and
  ``torch.compile`` of it.
- :mod:`.interpolate` (``interpolate``): ``fastgeo.interpolate`` of B paths of K+1 points
  through a DCGAN generator (64x64x3 outputs, random weights, feature width ngf) for a fixed
  number of iterations; its solver overhead ``1 - (generator forward + VJP) / total`` from
  the result's timings, measured with ``synchronize=True`` so the GPU's asynchronous work is
  charged where it runs.
- :mod:`.special_functions` (``bench/`` only; imports Numba): the scalar special functions.
- :mod:`.special_logsf` (``bench/`` only): ``fastgeo.special``'s public log survival
  functions; references scipy's and torch's.
- :mod:`.mixture` (``bench/`` only): ``fastgeo.ri`` of the semicircle prior (a Gaussian
  mixture) and its log-density; references the numpy log-density and the naive KDE sum.

Every benchmark also times a plain copy of its input on the same device: the memory
bandwidth that the kernels' traffic (bytes read + written at least) is compared with. Times
are the minimum over repeats after one warm-up call, whose result is checked. Slow
implementations are measured on a prefix of the input sized to a time budget and compared by
throughput (items per second).

The rest: :mod:`.machine` (describe_machine, describe_device), :mod:`.device` (Device),
:mod:`.timing` (Row, Runner), :mod:`.report` (summarize, markdown, to_csv, write, save_json) and
:mod:`.suite` (SIZES, BENCHMARKS, run). Importing this package imports neither torch nor Numba.
"""
from .checks import WrongResult, check_close, check_that, to_host
from .child import ONE_THREAD, last_json, run_python
from .device import Device, available_devices, backends_for
from .interpolate import CPU_INTERPOLATE_PATHS, bench_interpolate
from .kde_cdf import bench_kde, naive_kde_cdf
from .machine import describe_device, describe_machine
from .path_energy import bench_path, torch_path_energy
from .radial_ri import bench_radial
from .report import COLUMNS, markdown, save_json, summarize, table_rows, to_csv, write
from .suite import BENCHMARKS, SIZES, run
from .timing import WRONG_RESULT, Row, Runner

__all__ = [
    "SIZES", "BENCHMARKS", "CPU_INTERPOLATE_PATHS", "Row", "Runner", "WRONG_RESULT", "WrongResult",
    "check_close", "check_that", "to_host", "describe_machine", "describe_device", "Device",
    "available_devices", "backends_for", "bench_radial", "naive_kde_cdf", "bench_kde", "torch_path_energy",
    "bench_path", "bench_interpolate", "summarize", "COLUMNS", "table_rows", "markdown", "to_csv", "run",
    "write", "save_json",
]
