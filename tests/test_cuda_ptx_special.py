"""fastgeo.special's CUDA kernel (kernels/cuda_special.py) compiles to PTX without a GPU, for
sm_90 and sm_75 (the helpers and the skip rules are tests/test_cuda_ptx.py's)."""
import re

import pytest

import test_cuda_ptx as base

pytestmark = base.pytestmark
compiler = base.compiler  # the fixture


@pytest.mark.parametrize("cc", [(9, 0), (7, 5)])
def test_special_kernel_compiles_to_ptx(compiler, monkeypatch, cc):
    from fastgeo.kernels import cuda_special

    ptx = base.compile_ptx(compiler, monkeypatch, cuda_special.special_sf.py_func, cuda_special.signature(), cc)
    assert re.search(rf"^\.target sm_{cc[0]}{cc[1]}\b", ptx, re.M), ptx[:400]
    assert re.search(r"\.visible \.entry \S*special_sf", ptx)
    assert not re.search(r"\b(fma|mul|add|sub)(\.rn)?(\.ftz)?\.f32\b", ptx)  # all in float64
