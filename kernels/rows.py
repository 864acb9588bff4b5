"""Row helpers shared by the CPU and CUDA kernels: plain Numba functions of a 2-D array and a
row index, which Numba compiles for either target (the scalar math itself, functions of
numbers only, lives in radial.py, special.py and path.py)."""
import math

import numpy as np
from numba import njit

jit = njit(cache=True, nogil=True)


@jit
def row_radius(y, i):
    """|y_i| for row i of a 2-D array, scaled by the row's largest entry so that it does not
    overflow where |y_i|^2 does: max_j |y_ij| sqrt(sum_j (y_ij / max)^2). Finite unless |y_i|
    itself exceeds float64's largest value (1.8e308). Entries are widened with np.float64 (in a CUDA
    kernel float() would keep float32)."""
    top = 0.0
    for j in range(y.shape[1]):
        top = max(top, abs(np.float64(y[i, j])))
    if top == 0.0:
        return 0.0
    acc = 0.0
    for j in range(y.shape[1]):
        v = np.float64(y[i, j]) / top
        acc += v * v
    return top * math.sqrt(acc)
