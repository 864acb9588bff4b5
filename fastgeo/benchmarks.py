"""Kernel benchmarks beside the references users would otherwise reach for.

Shared by ``fastgeo bench`` (the CLI) and ``bench/gpu_bench.py`` (the GPU run). Three
benchmarks, each on every device and backend available here:

- ``radial-ri``: ``fastgeo.ri`` of a standard normal prior on (M, D) float32 points; reference
  ``scipy.stats.chi2.sf`` of float64 row norms (CPU), ``torch.special.gammaincc`` (GPU).
- ``kde-cdf``: ``fastgeo.KDE(samples).cdf`` at Q queries, n samples; reference the naive
  numpy sum ``mean(ndtr((x - l_i) / h))``.
- ``path-energy``: ``fastgeo.energy_and_grads`` of B paths of K+1 points decoded to N values;
  references torch eager autograd of the same energy and ``torch.compile`` of it.
- ``interpolate``: ``fastgeo.interpolate`` of B paths of K+1 points through a DCGAN generator
  (64x64x3 outputs, random weights, feature width ngf) for a fixed number of iterations; its
  solver overhead ``1 - (generator forward + VJP) / total`` from the result's timings,
  measured with ``synchronize=True`` so the GPU's asynchronous work is charged where it runs.

Every benchmark also times a plain copy of its input on the same device: the memory
bandwidth that the kernels' traffic (bytes read + written at least) is compared with. Times
are the minimum over repeats after one warm-up call. Slow implementations are measured on a
prefix of the input sized to a time budget and compared by throughput (items per second).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

#: problem sizes: radial (M, D), kde (n samples, Q queries), path (B, K, N)
#: interpolate (B paths, K segments, DCGAN width ngf, iterations)
SIZES = {
    "tiny": {"radial": (2_000, 64), "kde": (500, 2_000), "path": (2, 8, 256), "interpolate": (2, 5, 8, 2),
             "repeats": 3, "budget_s": 0.2},
    "quick": {"radial": (100_000, 512), "kde": (5_000, 20_000), "path": (16, 50, 3072),
              "interpolate": (4, 11, 16, 3), "repeats": 5, "budget_s": 1.0},
    "full": {"radial": (524_288, 512), "kde": (5_000, 10_000_000), "path": (256, 50, 12288),
             "interpolate": (256, 51, 64, 5), "repeats": 10, "budget_s": 3.0},
}
BENCHMARKS = ("radial", "kde", "path", "interpolate")
#: paths of the interpolate benchmark on a CPU at most: a DCGAN decodes B (K+1) images per
#: iteration, minutes per iteration at B = 256 on a few cores
CPU_INTERPOLATE_PATHS = 4


@dataclass
class Row:
    benchmark: str
    implementation: str
    device: str
    role: str  # "kernel" (fastgeo), "reference", "copy"
    items: int | None = None  # items measured (rows, queries, paths)
    bytes: int | None = None  # least traffic of the measured call
    seconds: float | None = None  # minimum over repeats
    note: str = ""
    items_per_s: float | None = None
    gb_per_s: float | None = None
    fraction_of_copy: float | None = None
    speedup: dict = field(default_factory=dict)  # reference implementation -> x faster
    extra: dict = field(default_factory=dict)  # benchmark-specific figures (e.g. the solver overhead)


# -- the machine -----------------------------------------------------------------------------

def describe_machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        mem_gib = None
    import fastgeo

    facts = fastgeo.info()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem_gib, "gpus": facts["gpus"],
            "numba_threads": facts["numba_threads"], "python": platform.python_version(),
            "system": platform.platform(), "fastgeo": facts["fastgeo"],
            "versions": {k: v for k, v in facts["versions"].items() if v}, "backends": facts["backends"]}


def describe_device(name) -> dict:
    """What runs the benchmarks of device ``name``: the CPU model, or the GPU (name, compute
    capability, memory) and the library holding its arrays; an unavailable GPU says why."""
    if name == "cpu":
        return {"kind": "cpu", "description": describe_machine()["cpu"]}
    from . import backends

    reason = backends.availability()["cuda"]
    if reason is not None:
        return {"kind": "cuda", "available": False, "description": f"no CUDA backend: {reason}"}
    from numba import cuda

    dev = cuda.get_current_device()
    free, total = cuda.current_context().get_memory_info()
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    return {"kind": "cuda", "available": True, "description": name,
            "compute_capability": list(dev.compute_capability), "memory_gib": round(total / 2**30, 1),
            "multiprocessors": dev.MULTIPROCESSOR_COUNT}


# -- devices ---------------------------------------------------------------------------------

class Device:
    """Where inputs live and how to wait for work there (CPU: numpy; GPU: torch or CuPy)."""

    def __init__(self, name):
        self.name = name
        self.lib = None
        if name == "cuda":
            try:
                import torch

                if torch.cuda.is_available():
                    self.lib = "torch"
            except ImportError:
                pass
            if self.lib is None:
                import cupy  # noqa: F401 - raises if there is no GPU library at all

                self.lib = "cupy"

    def put(self, host):
        if self.name == "cpu":
            return host
        if self.lib == "torch":
            import torch

            return torch.as_tensor(host, device="cuda")
        import cupy

        return cupy.asarray(host)

    def sync(self):
        if self.name == "cpu":
            return
        if self.lib == "torch":
            import torch

            torch.cuda.synchronize()
        else:
            import cupy

            cupy.cuda.get_current_stream().synchronize()

    def copier(self, x):
        """A call copying x into a preallocated array: read + write of x's bytes."""
        if self.name == "cpu":
            out = np.empty_like(x)
            return lambda: np.copyto(out, x)
        if self.lib == "torch":
            out = x.clone()
            return lambda: out.copy_(x)
        import cupy

        out = cupy.empty_like(x)
        return lambda: cupy.copyto(out, x)


def available_devices():
    from . import backends

    return ["cpu"] + (["cuda"] if backends.availability()["cuda"] is None else [])


def backends_for(device):
    from . import backends

    avail = backends.availability()
    names = ("cuda",) if device == "cuda" else ("cpu", "reference")
    return [n for n in names if avail[n] is None]


# -- timing ----------------------------------------------------------------------------------

class Runner:
    def __init__(self, repeats=5, budget_s=1.0, progress=True, stream=None):
        self.repeats = repeats
        self.budget_s = budget_s
        self.progress = progress
        self.stream = stream or sys.stderr
        self.rows: list[Row] = []

    def say(self, text):
        if self.progress:
            print(text, file=self.stream, flush=True)

    def time(self, call, device):
        device.sync()
        call()  # warm-up: compilation, caches, allocator
        device.sync()
        best = math.inf
        for _ in range(self.repeats):
            t0 = time.perf_counter()
            call()
            device.sync()
            best = min(best, time.perf_counter() - t0)
        return best

    def measure(self, benchmark, implementation, device, role, make_call, items, bytes_per_item=0,
                scalable=False, note=""):
        """Time make_call(n)() on n <= items items; a row (or a skipped row saying why).

        scalable: the call may run on a prefix, chosen so one call takes about budget_s / repeats.
        """
        label = f"{benchmark} | {implementation} ({device.name})"
        n = items
        try:
            if scalable and items > 1:
                probe = min(items, 256)
                call = make_call(probe)
                call()
                device.sync()
                t0 = time.perf_counter()
                call()
                device.sync()
                per_item = (time.perf_counter() - t0) / probe
                n = int(min(items, max(probe, self.budget_s / max(self.repeats, 1) / max(per_item, 1e-12))))
            seconds = self.time(make_call(n), device)
        except Exception as err:  # an implementation that cannot run here is reported, not fatal
            reason = " ".join(str(err).split())[:160] or type(err).__name__
            self.say(f"  {label}: skipped ({type(err).__name__}: {reason})")
            row = Row(benchmark, implementation, device.name, role, note=f"skipped: {type(err).__name__}: {reason}")
            self.rows.append(row)
            return row
        row = Row(benchmark, implementation, device.name, role, items=n, bytes=int(bytes_per_item * n),
                  seconds=seconds, note=note + ("" if n == items else f"{'; ' if note else ''}measured on {n} of {items}"))
        self.say(f"  {label}: {seconds * 1e3:.3f} ms" + (f" on {n} items" if n != items else ""))
        self.rows.append(row)
        return row


# -- the benchmarks --------------------------------------------------------------------------

def bench_radial(runner, device, shape, rng):
    import fastgeo
    from fastgeo.priors import StandardNormal

    m, d = shape
    host = rng.standard_normal((m, d), dtype=np.float32)
    z = device.put(host)
    prior = StandardNormal(d)
    name = f"radial-ri {m}x{d} float32"
    per_row = 4 * d + 4  # read a row, write one float32
    runner.say(f"[{name}] on {device.name}")
    runner.measure(name, "copy of z", device, "copy", lambda n: device.copier(z[:n]), m, 8 * d)
    for backend in backends_for(device.name):
        runner.measure(name, f"fastgeo.ri (backend={backend})", device, "kernel",
                       lambda n, b=backend: (lambda: fastgeo.ri(z[:n], prior, backend=b)), m, per_row,
                       scalable=(backend == "reference"))
    if device.name == "cpu":
        from scipy import stats

        def scipy_sf(n):
            zz = host[:n]
            return lambda: stats.chi2.sf(np.einsum("ij,ij->i", zz, zz, dtype=np.float64), d)

        runner.measure(name, "scipy.stats.chi2.sf(float64 row norms)", device, "reference", scipy_sf, m, per_row,
                       scalable=True)
    elif device.lib == "torch":
        import torch

        def torch_sf(n):
            zz = z[:n]
            half_d = torch.tensor(d / 2, dtype=torch.float64, device=zz.device)
            return lambda: torch.special.gammaincc(half_d, 0.5 * (zz.double() ** 2).sum(1)).float()

        runner.measure(name, "torch.special.gammaincc(float64 row norms)", device, "reference", torch_sf, m, per_row)


def naive_kde_cdf(x, samples, h):
    """The O(n) sum per query: what a user writes in numpy without fastgeo."""
    from scipy import special

    out = np.empty(x.shape)
    step = max(1, 2**21 // samples.size)
    for i in range(0, x.size, step):
        out[i:i + step] = special.ndtr((x[i:i + step, None] - samples[None, :]) / h).mean(axis=1)
    return out


def bench_kde(runner, device, shape, rng):
    import fastgeo
    from fastgeo.priors import semicircle

    n, q = shape
    kde = fastgeo.KDE.from_prior(semicircle(20), n=n, seed=0)
    lo, hi = kde.samples.min() - 3 * kde.bandwidth, kde.samples.max() + kde.bandwidth
    host = rng.uniform(lo, hi, q)
    x = device.put(host)
    name = f"kde-cdf n={n} Q={q} float64"
    runner.say(f"[{name}] on {device.name}")
    runner.measure(name, "copy of x", device, "copy", lambda k: device.copier(x[:k]), q, 16)
    for backend in backends_for(device.name):
        runner.measure(name, f"fastgeo.KDE.cdf (backend={backend})", device, "kernel",
                       lambda k, b=backend: (lambda: kde.cdf(x[:k], backend=b)), q, 16, scalable=True)
    if device.name == "cpu":
        runner.measure(name, "naive numpy sum of ndtr", device, "reference",
                       lambda k: (lambda: naive_kde_cdf(host[:k], kde.samples, kde.bandwidth)), q, 16,
                       scalable=True)


def torch_path_energy(decoded, log_ri, log_alpha):
    """E = sum_i (log a_i)^2 |G_{i+1} - G_i|^2 written in torch (MATH.md 3)."""
    import torch

    diff = decoded[:, 1:] - decoded[:, :-1]
    d = (diff * diff).flatten(2).sum(-1)
    log_a = log_alpha + torch.logaddexp(log_ri[:, :-1], log_ri[:, 1:]) - math.log(2.0)
    return (log_a * log_a * d).sum(1)


def bench_path(runner, device, shape, rng, torch_compile):
    import fastgeo

    b, k, n = shape
    host = np.cumsum(0.05 * rng.standard_normal((b, k + 1, n), dtype=np.float32), axis=1)
    host_l = -np.abs(rng.standard_normal((b, k + 1)))
    decoded, log_ri = device.put(host), device.put(host_l)
    alpha = 0.5
    name = f"path-energy B={b} K={k} N={n} float32"
    per_path = 2 * 4 * (k + 1) * n + 2 * 8 * (k + 1)  # read G, write dE/dG; l and dE/dl
    runner.say(f"[{name}] on {device.name}")
    runner.measure(name, "copy of decoded", device, "copy", lambda p: device.copier(decoded[:p]), b,
                   2 * 4 * (k + 1) * n)
    for backend in backends_for(device.name):
        runner.measure(name, f"fastgeo.energy_and_grads (backend={backend})", device, "kernel",
                       lambda p, be=backend: (lambda: fastgeo.energy_and_grads(decoded[:p], log_ri[:p], alpha,
                                                                               backend=be)), b, per_path)
    try:
        import torch
    except ImportError:
        return
    if device.name == "cuda" and device.lib != "torch":
        return
    where = "cuda" if device.name == "cuda" else "cpu"

    def eager(fn):
        def make(p):
            g = torch.as_tensor(host[:p], device=where).requires_grad_(True)
            l = torch.as_tensor(host_l[:p], device=where).requires_grad_(True)
            return lambda: torch.autograd.grad(fn(g, l, math.log(alpha)).sum(), (g, l))

        return make

    runner.measure(name, "torch eager autograd", device, "reference", eager(torch_path_energy), b, per_path)
    label = "torch.compile autograd"
    if not torch_compile:
        runner.rows.append(Row(name, label, device.name, "reference",
                               note="skipped: torch.compile is off for this size (--torch-compile on)"))
        return
    compiled = eager(torch.compile(torch_path_energy, dynamic=False))
    runner.say(f"  {name} | {label} ({device.name}): compiling...")
    t0 = time.perf_counter()
    try:
        compiled(b)()  # the first call compiles
        device.sync()
    except Exception as err:  # no C++ compiler, no Triton, an unsupported platform...
        reason = " ".join(str(err).split())[:160]
        runner.rows.append(Row(name, label, device.name, "reference",
                               note=f"skipped: torch.compile failed here: {type(err).__name__}: {reason}"))
        return
    compile_s = time.perf_counter() - t0
    row = runner.measure(name, label, device, "reference", compiled, b, per_path)
    row.note = f"compilation took {compile_s:.1f} s (not in the time)"


def bench_interpolate(runner, device, shape, rng):
    """fastgeo.interpolate through a DCGAN generator: time per call and the solver overhead."""
    import torch

    import fastgeo
    from fastgeo.models.dcgan import dcgan
    from fastgeo.priors import StandardNormal

    b, k, ngf, iters = shape
    nz = 100
    name = f"interpolate DCGAN-64x64x3 ngf={ngf} B={b} K={k} float32, {iters} iterations"
    runner.say(f"[{name}] on {device.name}")
    paths = b if device.name == "cuda" else min(b, CPU_INTERPOLATE_PATHS)
    note = "" if paths == b else f"measured on {paths} of {b} paths (CPU)"
    if device.name == "cuda" and device.lib != "torch":
        runner.rows.append(Row(name, "fastgeo.interpolate", device.name, "kernel",
                               note="skipped: needs torch with CUDA (the generator is a torch module)"))
        return
    where = "cuda" if device.name == "cuda" else "cpu"
    gen = dcgan(nz, ngf).to(where)
    z = torch.as_tensor(rng.standard_normal((2, paths, nz)), dtype=torch.float32, device=where)
    prior = StandardNormal(nz)

    def solve(p):
        return fastgeo.interpolate(gen, z[0, :p], z[1, :p], prior, n_points=k + 1, max_iter=iters, ftol=0.0,
                                   progress=False, synchronize=device.name == "cuda")

    try:
        solve(1)  # warm-up: compilation, cuDNN algorithm choice, the allocator
        best = min((solve(paths) for _ in range(max(1, min(runner.repeats, 3)))),
                   key=lambda res: res.timings["total"])
    except Exception as err:
        reason = " ".join(str(err).split())[:160] or type(err).__name__
        why = f"{type(err).__name__}: {reason}"
        runner.say(f"  {name} | fastgeo.interpolate ({device.name}): skipped ({why})")
        runner.rows.append(Row(name, "fastgeo.interpolate", device.name, "kernel", note=f"skipped: {why}"))
        return
    t = best.timings
    generator = t["generator_forward"] + t["generator_vjp"]
    overhead = 1.0 - generator / t["total"]
    parts = {key: t[key] for key in ("generator_forward", "generator_vjp", "realism_index", "path_energy",
                                     "total") if key in t}
    row = Row(name, "fastgeo.interpolate", device.name, "kernel", items=paths, seconds=t["total"],
              note="; ".join(filter(None, [note, f"solver overhead {100 * overhead:.1f}% "
                                                 f"(1 - generator forward+VJP / total)"])),
              extra={"solver_overhead_fraction": overhead, "timings_s": parts,
                     "generator_calls": best.n_calls,
                     "iterations_per_path": torch.as_tensor(best.iterations).cpu().reshape(-1).tolist()})
    runner.say(f"  {name} | fastgeo.interpolate ({device.name}): {t['total'] * 1e3:.1f} ms, "
               f"solver overhead {100 * overhead:.1f}%")
    runner.rows.append(row)


# -- ratios and tables -----------------------------------------------------------------------

def summarize(rows):
    """Fill throughput, bandwidth, fraction of the same run's copy bandwidth and speed-ups."""
    for row in rows:
        if row.seconds:
            row.items_per_s = row.items / row.seconds if row.items else None
            row.gb_per_s = row.bytes / row.seconds / 1e9 if row.bytes else None
    for row in rows:
        if row.role != "kernel" or not row.seconds:
            continue
        copy = next((c for c in rows if c.benchmark == row.benchmark and c.device == row.device
                     and c.role == "copy" and c.gb_per_s), None)
        if copy and row.gb_per_s:
            row.fraction_of_copy = row.gb_per_s / copy.gb_per_s
        for ref in rows:
            if ref.benchmark == row.benchmark and ref.role == "reference" and ref.items_per_s and row.items_per_s:
                row.speedup[f"{ref.implementation} ({ref.device})"] = row.items_per_s / ref.items_per_s
    return rows


COLUMNS = ("benchmark", "implementation", "device", "role", "items", "time_ms", "items_per_s", "gb_per_s",
           "pct_of_copy_bandwidth", "speedup_over_references", "note")


def table_rows(rows):
    for r in rows:
        yield {
            "benchmark": r.benchmark, "implementation": r.implementation, "device": r.device, "role": r.role,
            "items": "" if r.items is None else r.items,
            "time_ms": "" if r.seconds is None else f"{r.seconds * 1e3:.3f}",
            "items_per_s": "" if r.items_per_s is None else f"{r.items_per_s:.3g}",
            "gb_per_s": "" if r.gb_per_s is None else f"{r.gb_per_s:.2f}",
            "pct_of_copy_bandwidth": "" if r.fraction_of_copy is None else f"{100 * r.fraction_of_copy:.0f}%",
            "speedup_over_references": "; ".join(f"{v:.2f}x vs {k}" for k, v in r.speedup.items()),
            "note": r.note,
        }


def markdown(result) -> str:
    m = result["machine"]
    lines = [f"# fastgeo bench ({result['size']})", "",
             f"- CPU: {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), numba threads {m['numba_threads']}",
             f"- GPU: {', '.join(m['gpus']) or 'none'}",
             f"- fastgeo {m['fastgeo']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
             f"- {result['repeats']} repeats, minimum time; ratios from this run; bandwidth = least bytes "
             "moved / time, compared with a plain copy of the same input on the same device", ""]
    header = ["benchmark", "implementation", "device", "items", "time (ms)", "items/s", "GB/s",
              "% of copy BW", "speed-up over references", "note"]
    keys = ["benchmark", "implementation", "device", "items", "time_ms", "items_per_s", "gb_per_s",
            "pct_of_copy_bandwidth", "speedup_over_references", "note"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row in table_rows([Row(**r) for r in result["rows"]]):
        lines.append("| " + " | ".join(str(row[k]).replace("|", "/") for k in keys) + " |")
    return "\n".join(lines) + "\n"


def to_csv(result) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(table_rows([Row(**r) for r in result["rows"]]))
    return buf.getvalue()


def run(size="quick", only=BENCHMARKS, devices=None, shapes=None, repeats=None, torch_compile=None,
        progress=True, seed=0) -> dict:
    """Run the benchmarks; return a JSON-ready dict (machine, options, rows with ratios)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    unknown = [b for b in only if b not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    preset = SIZES[size]
    shapes = {**{k: preset[k] for k in BENCHMARKS}, **(shapes or {})}
    repeats = preset["repeats"] if repeats is None else repeats
    torch_compile = (size == "full") if torch_compile is None else torch_compile
    devices = devices or available_devices()
    runner = Runner(repeats, preset["budget_s"], progress)
    runner.say(f"fastgeo bench: size {size}, devices {', '.join(devices)}, {repeats} repeats")
    for device_name in devices:
        device = Device(device_name)
        for bench in only:
            rng = np.random.default_rng(seed)
            if bench == "radial":
                bench_radial(runner, device, shapes["radial"], rng)
            elif bench == "kde":
                bench_kde(runner, device, shapes["kde"], rng)
            elif bench == "path":
                bench_path(runner, device, shapes["path"], rng, torch_compile)
            else:
                bench_interpolate(runner, device, shapes["interpolate"], rng)
    summarize(runner.rows)
    return {"size": size, "shapes": {k: list(v) for k, v in shapes.items()}, "repeats": repeats,
            "devices": devices, "device_descriptions": {d: describe_device(d) for d in devices},
            "machine": describe_machine(), "rows": [asdict(r) for r in runner.rows]}


def write(result, directory) -> dict:
    """Write bench.json, bench.md and bench.csv into ``directory``; return their paths."""
    os.makedirs(directory, exist_ok=True)
    paths = {ext: os.path.join(directory, f"bench.{ext}") for ext in ("json", "md", "csv")}
    with open(paths["json"], "w") as fh:
        json.dump(result, fh, indent=2)
    with open(paths["md"], "w") as fh:
        fh.write(markdown(result))
    with open(paths["csv"], "w", newline="") as fh:
        fh.write(to_csv(result))
    return paths
