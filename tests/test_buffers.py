"""The output-buffer pool: memory is reused only when nobody can see it any more."""
import numpy as np
import torch

import fastgeo
from fastgeo._buffers import BufferPool


def test_reuses_only_dropped_arrays():
    pool = BufferPool(keep=2, min_bytes=0)
    a = pool.empty((3, 4), np.float32)
    where = a.ctypes.data
    b = pool.empty((3, 4), np.float32)
    assert b.ctypes.data != where  # a is still held
    del a
    c = pool.empty((3, 4), np.float32)
    assert c.ctypes.data == where  # a was dropped: its memory comes back
    view = c[1:]
    del c
    assert pool.empty((3, 4), np.float32).ctypes.data != where  # a view keeps it alive
    del view
    tensor = torch.from_numpy(pool.empty((3, 4), np.float32))
    assert pool.empty((3, 4), np.float32).ctypes.data != tensor.data_ptr()  # so does a tensor
    assert pool.empty((3, 5), np.float32).shape == (3, 5)
    assert pool.empty((3, 4), np.float64).dtype == np.float64


def test_keeps_a_bounded_number_and_skips_small_arrays():
    pool = BufferPool(keep=2, min_bytes=1000)
    small = pool.empty((10,), np.float64)
    assert small.shape == (10,) and not pool._arrays
    held = [pool.empty((1000,), np.float64) for _ in range(5)]
    assert len(pool._arrays) == 2 and len({h.ctypes.data for h in held}) == 5
    pool.clear()
    assert not pool._arrays


def test_path_gradients_survive_later_calls(rng, monkeypatch):
    """A gradient the caller still holds is never overwritten by a later call."""
    from fastgeo.backends import cpu

    monkeypatch.setattr(cpu, "GRADIENTS", BufferPool(keep=2, min_bytes=0))
    G = rng.standard_normal((2, 5, 30))
    l = rng.uniform(-5, 0, (2, 5))
    _, first, _ = fastgeo.energy_and_grads(G, l, 0.5, backend="cpu")
    kept = first.copy()
    for _ in range(3):
        _, other, _ = fastgeo.energy_and_grads(-G, l, 0.5, backend="cpu")
        assert not np.shares_memory(other, first)
        del other
    np.testing.assert_array_equal(first, kept)
    base = first.base if first.base is not None else first
    del first, base
    _, again, _ = fastgeo.energy_and_grads(G, l, 0.5, backend="cpu")
    np.testing.assert_array_equal(again, kept)
