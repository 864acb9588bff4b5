"""radial-ri: ``fastgeo.ri`` of a standard normal prior on (M, D) float32 points.

Implementations compared: ``fastgeo.ri`` on each backend; scipy's ``chi2.sf`` of the squared
row norms accumulated in float64 (what the kernel computes) or in float32 (faster, less
exact); on a GPU, ``torch.special.gammaincc`` of float64 row norms. Reference for the check:
fastgeo's float64 reference backend on the first ``CHECK_ROWS`` rows, cast to float64.
"""
from __future__ import annotations

import numpy as np

from .checks import check_close
from .device import backends_for

CHECK_ROWS = 64
#: float32 results (float64 arithmetic, one rounding) against the float64 reference
RTOL = 1e-5
#: row norms accumulated in float32: their rounding, amplified by the survival function's slope
RTOL_FLOAT32_NORMS = 1e-3


def points(rng, m, d):
    """(m, d) float32 standard normal points."""
    return rng.standard_normal((m, d), dtype=np.float32)


def standard_normal(d):
    from fastgeo.priors import StandardNormal

    return StandardNormal(d)


def fastgeo_ri(z, prior, backend):
    import fastgeo

    return fastgeo.ri(z, prior, backend=backend)


def scipy_chi2_sf(z, dim, norm_dtype=np.float64):
    """The realism index as a user writes it: scipy's chi2 survival function of |z|^2."""
    from scipy import stats

    return stats.chi2.sf(np.einsum("ij,ij->i", z, z, dtype=norm_dtype), dim)


def torch_gammaincc(z, half_dim):
    """The same in torch (GPU arrays): Q(D/2, |z|^2 / 2) of float64 row norms, as float32;
    ``half_dim``: D/2, a float64 tensor on z's device (made once, outside the timed calls)."""
    import torch

    return torch.special.gammaincc(half_dim, 0.5 * (z.double() ** 2).sum(1)).float()


def reference(z, prior):
    """float64 ri of the first CHECK_ROWS rows of host array ``z`` (fastgeo's reference backend)."""
    return fastgeo_ri(np.asarray(z[:CHECK_ROWS], dtype=np.float64), prior, "reference")


def check(result, reference, rtol=RTOL):
    check_close("radial ri", result, reference, rtol=rtol)


def bench_radial(runner, device, shape, rng):
    """Rows of radial-ri on ``device``: a copy of z, fastgeo.ri per backend, the reference."""
    import fastgeo

    m, d = shape
    host = points(rng, m, d)
    z = device.put(host)
    prior = standard_normal(d)
    truth = reference(host, prior)
    name = f"radial-ri {m}x{d} float32"
    per_row = 4 * d + 4  # read a row, write one float32
    runner.say(f"[{name}] on {device.name}")
    runner.measure(name, "copy of z", device, "copy", lambda n: device.copier(z[:n]), m, 8 * d,
                   check=lambda out: check_close("copy of z", out, host[:CHECK_ROWS], rtol=0.0))
    for backend in backends_for(device.name):
        runner.measure(name, f"fastgeo.ri (backend={backend})", device, "kernel",
                       lambda n, b=backend: (lambda: fastgeo.ri(z[:n], prior, backend=b)), m, per_row,
                       scalable=(backend == "reference"), check=lambda out: check(out, truth))
    if device.name == "cpu":
        runner.measure(name, "scipy.stats.chi2.sf(float64 row norms)", device, "reference",
                       lambda n: (lambda: scipy_chi2_sf(host[:n], d)), m, per_row, scalable=True,
                       check=lambda out: check(out, truth))
    elif device.lib == "torch":
        import torch

        def torch_sf(n):
            zz = z[:n]
            half_d = torch.tensor(d / 2, dtype=torch.float64, device=zz.device)
            return lambda: torch_gammaincc(zz, half_d)

        runner.measure(name, "torch.special.gammaincc(float64 row norms)", device, "reference", torch_sf, m,
                       per_row, check=lambda out: check(out, truth))
