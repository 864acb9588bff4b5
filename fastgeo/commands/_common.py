"""Options and checks shared by ``fastgeo demo`` and ``fastgeo interpolate``."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import sys
import tempfile

from . import UserError


def int_at_least(low: int, what: str = ""):
    """An argparse type for integers >= low; ``what`` explains the bound in the message."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}{what}, got {text!r}")
        return value

    return parse


positive_int = int_at_least(1)
n_points = int_at_least(3, " (both endpoints and at least one midpoint)")


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def thread_count(text):
    """An argparse type for --threads: 1 to the number of CPUs this process may run on (torch
    and Numba would try to start every thread asked for: 100000 of them exhaust the memory and
    crash)."""
    cpus = usable_cpus()
    value = positive_int(text)
    if value > cpus:
        raise argparse.ArgumentTypeError(f"expected at most {cpus} (the CPUs this process may use), "
                                         f"got {text!r}")
    return value


def name_list(where: str, what: str):
    """An argparse type for distinct comma-separated names from the collection at ``where``
    ("module:ATTR", imported when an option is parsed, so ``--help`` stays light)."""
    def parse(text):
        module, _, attr = where.partition(":")
        known = list(getattr(importlib.import_module(module), attr))
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names or any(n not in known for n in names) or len(set(names)) != len(names):
            raise argparse.ArgumentTypeError(f"choose distinct {what} from {', '.join(known)} (comma-separated), "
                                             f"got {text!r}")
        return names

    return parse


def alpha(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def add_run_options(parser, out_default):
    """The options both commands share: how to solve, where to write, what to show."""
    parser.add_argument("--n-points", type=n_points, default=52, metavar="N",
                        help="points per path, both endpoints included (default 52: the paper's 50 midpoints)")
    parser.add_argument("--alpha", type=alpha, default=None, metavar="A",
                        help="scale of the realism index in eq. (3), in (0, 1) (default 1/e = 0.368, "
                             "fastgeo.DEFAULT_ALPHA: every segment costs at least its squared decoded length)")
    parser.add_argument("--solver", choices=["auto", "lbfgs-gn", "lbfgs", "gd"], default="auto",
                        help="optimiser of the ri-optimal path: auto (default: lbfgs-gn up to 128 latent "
                             "dimensions where it fits in memory, else lbfgs), L-BFGS then Gauss-Newton (reaches "
                             "the minimum), preconditioned L-BFGS (cheap iterations, may stop short of the "
                             "minimum: see the estimated gap it prints), or the paper's gradient descent (many "
                             "times slower)")
    parser.add_argument("--max-iter", type=positive_int, default=None, metavar="N",
                        help="solver iterations per path at most (default: 3000 for lbfgs-gn, 500 for lbfgs, "
                             "20000 for gd)")
    parser.add_argument("--starts", type=positive_int, default=1, metavar="N",
                        help="starting paths per pair: the linear path and N - 1 smooth random detours of it, "
                             "solved together, each pair's lowest minimum kept (default 1; N times the cost: the "
                             "energy has many local minima on some generators)")
    parser.add_argument("--backend", choices=["auto", "cpu", "reference", "cuda"], default="auto",
                        help="kernels for the realism index and the path energy: auto (default: the fastest "
                             "available for the data), cpu (Numba), reference (float64 numpy/scipy), cuda")
    parser.add_argument("--out", default=out_default, metavar="DIR",
                        help=f"output folder (default: ./{out_default})")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show progress on stderr (default: only when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false",
                          help="no progress output on stderr")


def add_threads_option(parser, default):
    what = f"default {default}" if default else "default: the libraries' own (all cores)"
    parser.add_argument("--threads", type=thread_count, default=default, metavar="N",
                        help=f"CPU threads for torch and for fastgeo's Numba kernels ({what}). Small "
                             "generators gain nothing from more, and two thread pools that spin while waiting "
                             "(torch's OpenMP and Numba's) slow each other down badly on a busy machine")


@contextlib.contextmanager
def threads(n):
    """torch's and Numba's CPU thread counts set to n inside the block (None: unchanged)."""
    if n is None:
        yield
        return
    import numba
    import torch

    saved = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        numba.set_num_threads(saved[1])


def show_progress(args) -> bool:
    if args.progress is not None:
        return bool(args.progress)
    return sys.stderr is not None and sys.stderr.isatty()


def writable_folder(path: str) -> str:
    """Create ``path`` if needed and check that files can be written in it (a UserError if not)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"output folder {path!r} exists and is not a folder")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise UserError(f"cannot write to output folder {path!r}: {err.strerror or err}") from None
    return path


def check_backend(backend: str, device: str | None = None) -> str | None:
    """A UserError when ``backend`` (or, for "auto", what the FASTGEO_BACKEND variable asks
    for) is not a backend available here. With ``device`` ("cpu", "cuda:0"), the name of the
    backend that will run for data there (the automatic choice resolved)."""
    from .._arrays import ArrayKind
    from .._config import requested_backend
    from ..backends import BackendUnavailable, availability, select

    try:
        name = requested_backend(backend)
        why = availability().get(name) if name != "auto" else None
        if why is not None:
            raise BackendUnavailable(f"not available here: {why}")
        if device is not None:
            return select(backend, ArrayKind("torch", device)).name
    except (ValueError, BackendUnavailable) as err:
        raise UserError(f"--backend {backend}: {' '.join(str(err).split())}") from None
    return None


class Stages:
    """One line per stage on stderr (when progress is on), so long runs show where they are."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def say(self, text: str):
        if self.enabled:
            print(text, file=sys.stderr, flush=True)
