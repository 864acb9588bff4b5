"""First-call cost: import time, and the first (then second) ri, log_ri_and_grad, path energy,
KDE-prior and interpolate call in a fresh process (interpolate after the others: what it
compiles beyond them, the solver's path-energy layout and the L-BFGS kernels).

Run it twice: after `find . -name "*.nb[ic]" -delete` (cold: Numba compiles) and again
(warm: cached machine code). `--dtype float64` runs the ri and log_ri_and_grad calls on a
float64 batch instead (the other dtype's ri then comes after them, as ri_other).
Results: bench/results/first-call-cpu.json.
"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import fastgeo
t1 = time.perf_counter()
dtype = sys.argv[sys.argv.index("--dtype") + 1] if "--dtype" in sys.argv else "float32"
tag = {"float32": "f32", "float64": "f64"}[dtype]
z = np.random.default_rng(0).standard_normal((1000, 64)).astype(dtype)
p = fastgeo.priors.StandardNormal(64)
out = {"import_s": t1 - t0}
def timed(name, f):
    a = time.perf_counter(); f(); b = time.perf_counter(); f(); c = time.perf_counter()
    out[name + "_first_s"] = b - a; out[name + "_second_s"] = c - b
timed("ri_" + tag, lambda: fastgeo.ri(z, p))
timed("log_ri_and_grad_" + tag, lambda: fastgeo.log_ri_and_grad(z, p))
z_other = z.astype(np.float64 if dtype == "float32" else np.float32)
timed("ri_other", lambda: fastgeo.ri(z_other, p))  # the other dtype: its own kernel
G = np.random.default_rng(1).standard_normal((4, 11, 100)).astype(np.float32); l = -np.random.default_rng(2).random((4, 11))
timed("energy_and_grads_f32", lambda: fastgeo.energy_and_grads(G, l, 0.5))
s = fastgeo.priors.semicircle(20)
zz = s.sample(100, seed=0)
timed("log_ri_semicircle_kde", lambda: fastgeo.log_ri(zz, s))
import torch
net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 30)).eval()
z0, z1 = torch.randn(4, 8), torch.randn(4, 8)
timed("interpolate_lbfgs_f32", lambda: fastgeo.interpolate(net, z0, z1, fastgeo.priors.StandardNormal(8),
                                                           n_points=8, max_iter=3, progress=False))
print(json.dumps(out))
