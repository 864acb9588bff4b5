"""The shared scalar math keeps exact IEEE semantics whichever kernel compiles it first.

Numba compiles a jitted callee with its caller's ``fastmath`` flags when the caller is
compiled first, and caches that version for everyone. A kernel with fastmath calling the
special functions would so let LLVM rewrite, for instance, exp(a) * exp(b) into exp(a + b),
undoing the exact splits the special functions rely on. The kernels therefore keep fastmath
on their call-free row loops only. This test compiles everything in two orders, each in a
fresh process with an empty cache, and demands bit-identical results.
"""
import json
import subprocess
import sys

SCALARS = """
import fastgeo.kernels.special as S, fastgeo.kernels.special_core as C, fastgeo.kernels.path as P
vals = [C.exp_sq(23.85898416485517, -0.5), C.erfcx(3.7), S.log_ndtr(-23.5), S.log_ndtr(7.1),
        S.log_gamma_q(256.0, 300.7), S.log_gamma_q(8192.0, 8000.3), S.gamma_hazard(20.0, 31.4),
        S.log_beta_i(0.5, 256.0, -3.1, -0.046), P.segment_log_a(-3.3, -40.2, -1.0),
        P.log_add_exp(-745.2, -744.9)]
out["scalars"] = [float(v).hex() for v in vals]
"""

KERNELS = """
import numpy as np, fastgeo
from fastgeo.priors import StandardNormal, StudentT, semicircle
rng = np.random.default_rng(5)
z = rng.standard_normal((200, 600)).astype(np.float32) * 1.3
g = rng.random((3, 6, 70000))
l = -rng.random((3, 6)) * 30
lr, gr = fastgeo.log_ri_and_grad(z, StandardNormal(600))
E, dG, dl = fastgeo.energy_and_grads(g, l, 0.3)
t = fastgeo.log_ri(z[:50, :7].astype(np.float64), StudentT(7, 3.0))
k = fastgeo.log_ri(z[:50, :4].astype(np.float64) * 3, semicircle(4, kde_samples=500))
out["kernels"] = [np.asarray(a, np.float64).tobytes().hex() for a in (lr, gr, E, dG, dl, t, k)]
"""


def run(order, cache_dir):
    code = "import json\nout = {}\n" + "\n".join(order) + "\nprint(json.dumps(out))"
    env = {"NUMBA_CACHE_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_compilation_order_does_not_change_numerics(tmp_path):
    kernels_first = run([KERNELS, SCALARS], tmp_path / "a")
    scalars_first = run([SCALARS, KERNELS], tmp_path / "b")
    assert kernels_first["scalars"] == scalars_first["scalars"]
    assert kernels_first["kernels"] == scalars_first["kernels"]
