"""fastgeo.special on a GPU: torch CUDA tensors (and CuPy arrays where installed) in, the same
type, dtype and device out, equal to the CPU kernel's results (the same scalar function);
autograd in x; outputs poisoned (conftest) so an element the kernel leaves shows as NaN."""
import numpy as np
import pytest

import fastgeo.special as S
from fastgeo.backends import cuda as cuda_backend

REASON = cuda_backend.unavailable_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=f"no CUDA backend: {REASON}")]

torch = pytest.importorskip("torch")

CASES = [  # (function, arguments as numpy, index of x)
    (S.chi2_logsf, lambda r: (r.uniform(0, 3000, (5, 1)), r.uniform(0.5, 1000, (1, 300))), 0),
    (S.gamma_logsf, lambda r: (r.uniform(0, 300, (300,)), r.uniform(0.1, 100, (300,)), 2.0), 0),
    (S.log_gammaincc, lambda r: (r.uniform(0.1, 100, (300,)), r.uniform(0, 300, (300,))), 1),
    (S.f_logsf, lambda r: (r.uniform(0, 100, (300,)), 3.0, r.uniform(0.5, 500, (300,))), 0),
    (S.log_betainc_upper, lambda r: (r.uniform(0.2, 50, (300,)), 4.0, r.uniform(0, 1, (300,))), 2),
]


def to_cuda(a, dtype):
    return torch.as_tensor(a, dtype=dtype, device="cuda") if isinstance(a, np.ndarray) else a


@pytest.mark.parametrize("fn,make,xi", CASES, ids=lambda c: getattr(c, "__name__", ""))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_cuda_matches_cpu(rng, poisoned_outputs, fn, make, xi, dtype):
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    args = make(rng)
    cpu = fn(*[torch.as_tensor(a, dtype=dtype) if isinstance(a, np.ndarray) else a for a in args])
    gpu = fn(*[to_cuda(a, dtype) for a in args])
    assert gpu.device.type == "cuda" and gpu.dtype == dtype and gpu.shape == cpu.shape
    np.testing.assert_array_equal(gpu.cpu().numpy(), cpu.numpy())
    x = to_cuda(args[xi], dtype).requires_grad_(True)
    a = [to_cuda(v, dtype) for v in args]
    a[xi] = x
    fn(*a).sum().backward()
    xc = torch.as_tensor(args[xi], dtype=dtype).requires_grad_(True)
    ac = [torch.as_tensor(v, dtype=dtype) if isinstance(v, np.ndarray) else v for v in args]
    ac[xi] = xc
    fn(*ac).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), xc.grad.numpy(), rtol=1e-6 if dtype == torch.float32 else 1e-13)


def test_cupy_in_cupy_out(rng):
    cupy = pytest.importorskip("cupy")
    x = rng.uniform(0, 3000, 1000)
    got = S.chi2_logsf(cupy.asarray(x), 512.0)
    assert isinstance(got, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(got), S.chi2_logsf(x, 512.0))
