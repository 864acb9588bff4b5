"""fastgeo.interpolate_many on a LocalCluster of 2 worker processes: the store equals a
single-process run bit for bit, resumes, refuses other runs, survives a killed worker and an
interrupted client, reports a failing batch, and is readable with zarr and dask alone."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import distributed
import numpy as np
import pytest
import torch
import zarr

import fastgeo
from fastgeo import compare
from fastgeo.priors import StandardNormal

GENERATOR = textwrap.dedent('''
    import os
    import time

    import torch


    class G(torch.nn.Module):
        """A fixed random MLP 4 -> 8; sleeps FASTGEO_TEST_SLEEP seconds per call; raises for a
        latent with a coordinate of exactly 7.25 (the test's poisoned endpoint: a magnitude
        threshold would also catch the solver's long trial steps); blocks on a latent with a
        coordinate of exactly 0.5 while the file FASTGEO_TEST_GATE exists."""

        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(1234)
            self.w1 = torch.nn.Parameter(torch.randn(16, 4, generator=g, dtype=torch.float64) / 2)
            self.w2 = torch.nn.Parameter(torch.randn(8, 16, generator=g, dtype=torch.float64) / 4)

        def forward(self, z):
            time.sleep(float(os.environ.get("FASTGEO_TEST_SLEEP", "0")))
            gate = os.environ.get("FASTGEO_TEST_GATE")
            if gate and (z == 0.5).any():  # gated endpoints wait while the gate file exists
                while os.path.exists(gate):
                    time.sleep(0.05)
            if (z == 7.25).any():
                raise RuntimeError("poisoned latent")
            return torch.tanh(z @ self.w1.T) @ self.w2.T
''')
SETTINGS = dict(batch_size=4, n_points=6, max_iter=30)
DIM = 4


@pytest.fixture(scope="module")
def gen_spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "tinygen.py"
    path.write_text(GENERATOR)
    return f"{path}:G"


@pytest.fixture(scope="module")
def client():
    # compile the kernels once here, so that the workers load them from Numba's cache
    fastgeo.log_ri_and_grad(np.random.default_rng(0).standard_normal((3, DIM)), StandardNormal(DIM))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl, \
            distributed.Client(cl) as c:
        yield c


def make_pairs(rng, n):
    return rng.standard_normal((n, 2, DIM)) * 1.5


def reference(gen_spec, pairs, methods=("linear", "slerp", "optimal")):
    """The single-process result, batch by batch as the store holds it."""
    from fastgeo.generators import load

    torch.set_num_threads(1)
    gen = load(gen_spec)
    out = {m: [] for m in methods}
    bs = SETTINGS["batch_size"]
    for s in range(0, len(pairs), bs):
        z0 = torch.as_tensor(pairs[s:s + bs, 0])
        z1 = torch.as_tensor(pairs[s:s + bs, 1])
        res = compare.run_methods(gen, z0, z1, StandardNormal(DIM), methods, n_points=SETTINGS["n_points"],
                                  max_iter=SETTINGS["max_iter"])
        for m, r in res.items():
            out[m].append(compare.result_arrays(r))
    return {m: {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k not in ("seconds", "decoded")}
            for m, parts in out.items()}


def assert_store_equals(store, ref, batches=None):
    root = zarr.open_group(store, mode="r")
    bs = SETTINGS["batch_size"]
    for method, arrays in ref.items():
        for name, want in arrays.items():
            got = root[method][name][:]
            rows = slice(None) if batches is None else np.concatenate(
                [np.arange(i * bs, min((i + 1) * bs, len(want))) for i in batches])
            if name in ("status", "solver"):
                assert list(got[rows]) == list(want[rows]), (method, name)
            else:
                np.testing.assert_array_equal(got[rows], np.asarray(want[rows], dtype=got.dtype), err_msg=f"{method}.{name}")


def test_store_equals_single_process_and_resumes(client, gen_spec, rng, tmp_path):
    pairs = make_pairs(rng, 10)
    store = str(tmp_path / "run.zarr")
    res = fastgeo.interpolate_many(gen_spec, pairs, StandardNormal(DIM), store=store, client=client, **SETTINGS)
    assert res.ok and res.n_batches == 3 and res.done_batches == 3 and not res.failed and res.reused_batches == 0
    assert sorted(res.batch_seconds) == [0, 1, 2]
    assert_store_equals(store, reference(gen_spec, pairs))
    root = zarr.open_group(store, mode="r")
    assert root["batch_done"][:].all()
    assert "decoded" not in root["optimal"]
    assert root["optimal/metrics/energy"][:].tolist() == root["optimal/energy"][:].tolist()
    settings = root.attrs["fastgeo"]["settings"]
    assert settings["generator"] == gen_spec and settings["max_iter"] == SETTINGS["max_iter"]
    # a rerun computes nothing
    again = fastgeo.interpolate_many(gen_spec, pairs, StandardNormal(DIM), store=store, client=client, **SETTINGS)
    assert again.reused_batches == 3 and again.batch_seconds == {}
    # another run's settings are refused, naming the differences
    with pytest.raises(ValueError, match=r"other settings \(.*max_iter: 31 now, 30 there"):
        fastgeo.interpolate_many(gen_spec, pairs, StandardNormal(DIM), store=store, client=client,
                                 **{**SETTINGS, "max_iter": 31})
    with pytest.raises(ValueError, match="pairs"):
        fastgeo.interpolate_many(gen_spec, pairs + 1, StandardNormal(DIM), store=store, client=client, **SETTINGS)


def test_dask_and_zarr_pairs_and_kept_decoded(client, gen_spec, rng, tmp_path):
    import dask.array as da

    pairs = make_pairs(rng, 7)
    src = zarr.open_array(str(tmp_path / "pairs.zarr"), mode="w", shape=pairs.shape, chunks=(3, 2, DIM),
                          dtype="float64")
    src[:] = pairs
    ref = reference(gen_spec, pairs)
    for i, given in enumerate([da.from_array(pairs, chunks=(5, 2, DIM)), src]):
        store = str(tmp_path / f"run{i}.zarr")
        res = fastgeo.interpolate_many(gen_spec, given, StandardNormal(DIM), store=store, client=client,
                                       keep_decoded=True, **SETTINGS)
        assert res.ok
        assert_store_equals(store, ref)
    decoded = zarr.open_group(store, mode="r")["optimal/decoded"]
    assert decoded.shape == (7, SETTINGS["n_points"], 8)
    with torch.no_grad():
        from fastgeo.generators import load

        want = load(gen_spec)(torch.as_tensor(zarr.open_group(store, mode="r")["optimal/latents"][:].reshape(-1, DIM)))
    np.testing.assert_allclose(decoded[:].reshape(-1, 8), want.numpy(), rtol=1e-12, atol=1e-14)


def test_failing_batch_is_reported_and_the_others_finish(client, gen_spec, rng, tmp_path):
    pairs = make_pairs(rng, 12)
    pairs[5, 1, 0] = 7.25  # batch 1 (pairs 4..7) decodes a poisoned latent
    store = str(tmp_path / "run.zarr")
    res = fastgeo.interpolate_many(gen_spec, pairs, StandardNormal(DIM), store=store, client=client, **SETTINGS)
    assert not res.ok and res.done_batches == 2
    assert [(f.batch, f.start, f.stop) for f in res.failed] == [(1, 4, 8)]
    assert "poisoned latent" in res.failed[0].error and res.failed_pairs == [4, 5, 6, 7]
    assert zarr.open_group(store, mode="r")["batch_done"][:].tolist() == [True, False, True]
    clean = pairs.copy()
    clean[5, 1, 0] = 0.0  # batches 0 and 2 as a single process computes them
    assert_store_equals(store, reference(gen_spec, clean), batches=[0, 2])


def test_bad_inputs_get_clear_errors(client, gen_spec, rng, tmp_path):
    import dask.array as da

    prior = StandardNormal(DIM)
    pairs = make_pairs(rng, 6)
    bad = pairs.copy()
    bad[3, 0, 2] = np.nan
    with pytest.raises(ValueError, match=r"pairs 3 contain NaN or inf"):
        fastgeo.interpolate_many(gen_spec, bad, prior, store=str(tmp_path / "a.zarr"), client=client, **SETTINGS)
    with pytest.raises(ValueError, match=r"pairs 3 contain NaN or inf"):
        fastgeo.interpolate_many(gen_spec, da.from_array(bad, chunks=2), prior, store=str(tmp_path / "b.zarr"),
                                 client=client, **SETTINGS)
    with pytest.raises(ValueError, match=r"shape \(P, 2, D\)"):
        fastgeo.interpolate_many(gen_spec, pairs[:, :1], prior, store=str(tmp_path / "c.zarr"), client=client)
    with pytest.raises(ValueError, match="3-dimensional endpoints but the prior is 4-dimensional"):
        fastgeo.interpolate_many(gen_spec, pairs[:, :, :3], prior, store=str(tmp_path / "c.zarr"), client=client)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if not os.access(locked, os.W_OK):  # root ignores permissions
        with pytest.raises(ValueError, match="cannot write the store"):
            fastgeo.interpolate_many(gen_spec, pairs, prior, store=str(locked / "s.zarr"), client=client, **SETTINGS)
    (tmp_path / "notastore").mkdir()
    (tmp_path / "notastore" / "x.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not a Zarr store"):
        fastgeo.interpolate_many(gen_spec, pairs, prior, store=str(tmp_path / "notastore"), client=client)
    with pytest.raises(TypeError, match="does not take: ftoll"):
        fastgeo.interpolate_many(gen_spec, pairs, prior, store=str(tmp_path / "d.zarr"), client=client, ftoll=1)


def test_unanswering_scheduler_times_out_with_one_clear_line(gen_spec, rng, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=rf"no Dask scheduler answered at tcp://127.0.0.1:{port} within 2 s"):
        fastgeo.interpolate_many(gen_spec, make_pairs(rng, 2), StandardNormal(DIM), store=str(tmp_path / "s.zarr"),
                                 client=f"tcp://127.0.0.1:{port}", connect_timeout=2, **SETTINGS)
    assert time.perf_counter() - start < 30


def wait_for_done(store, at_least, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if zarr.open_group(store, mode="r")["batch_done"][:].sum() >= at_least:
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no {at_least} batches done in {timeout} s")


def test_killed_worker_batches_are_rerun(gen_spec, rng, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTGEO_TEST_SLEEP", "0.02")  # the workers inherit it
    pairs = make_pairs(rng, 16)
    store = str(tmp_path / "run.zarr")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl, \
            distributed.Client(cl) as c:
        pids = c.run(os.getpid)
        fut = c.submit(lambda: None)  # the cluster is up
        fut.result()
        import threading

        def kill_one():
            wait_for_done(store, 1)
            os.kill(next(iter(pids.values())), signal.SIGKILL)

        killer = threading.Thread(target=kill_one, daemon=True)
        killer.start()
        res = fastgeo.interpolate_many(gen_spec, pairs, StandardNormal(DIM), store=store, client=c, **SETTINGS)
        killer.join(timeout=60)
    assert res.ok and not res.failed, res.failed
    monkeypatch.delenv("FASTGEO_TEST_SLEEP")
    assert_store_equals(store, reference(gen_spec, pairs))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_client_leaves_complete_batches_and_the_rerun_completes(gen_spec, rng, tmp_path, sig):
    pairs = make_pairs(rng, 32)
    pairs[28:, 0, 3] = 0.5  # the last batch waits at the gate: the signal always lands mid-run
    np.save(tmp_path / "pairs.npy", pairs)
    gate = tmp_path / "gate"
    gate.write_text("closed")
    store = str(tmp_path / "run.zarr")
    # SIGINT as a terminal delivers it: a job started in the background (as CI may be) hands its
    # children SIGINT ignored, and Python then installs no KeyboardInterrupt handler
    script = textwrap.dedent(f"""
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import numpy as np, fastgeo
        from fastgeo.priors import StandardNormal
        if __name__ == "__main__":
            fastgeo.interpolate_many({gen_spec!r}, np.load({str(tmp_path / 'pairs.npy')!r}), StandardNormal({DIM}),
                                     store={store!r}, client="local:2", **{SETTINGS!r})
    """)
    env = {**os.environ, "FASTGEO_TEST_GATE": str(gate)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_done(store, 1, timeout=180)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)  # a few seconds, the gated task still running
    finally:
        if proc.poll() is None:
            proc.kill()
    done = zarr.open_group(store, mode="r")["batch_done"][:]
    assert proc.returncode != 0, (done, err[-2000:])
    assert "KeyboardInterrupt" in err
    assert 1 <= done.sum() <= 7 and not done[7]
    ref = reference(gen_spec, pairs)
    assert_store_equals(store, ref, batches=np.flatnonzero(done))
    gate.unlink()
    res = fastgeo.interpolate_many(gen_spec, pairs, StandardNormal(DIM), store=store, client="local:2", **SETTINGS)
    assert res.ok and res.reused_batches == done.sum()
    assert_store_equals(store, ref)


def test_store_reads_with_zarr_dask_and_xarray_alone(client, gen_spec, rng, tmp_path):
    pairs = make_pairs(rng, 5)
    store = str(tmp_path / "run.zarr")
    fastgeo.interpolate_many(gen_spec, pairs, StandardNormal(DIM), store=store, client=client, **SETTINGS)
    code = textwrap.dedent(f"""
        import sys, zarr, dask.array as da
        root = zarr.open_group({store!r}, mode="r")
        lat = da.from_zarr({store!r}, component="optimal/latents")
        assert lat.shape == (5, {SETTINGS['n_points']}, {DIM}) and lat.chunksize[0] == {SETTINGS['batch_size']}
        print(float(da.from_zarr({store!r}, component="optimal/energy").mean().compute()),
              list(root["optimal/status"][:])[:1], dict(root.attrs)["fastgeo"]["settings"]["solver"])
        import xarray
        ds = xarray.open_zarr({store!r}, group="optimal", consolidated=False)
        assert ds.latents.dims == ("pair", "point", "dim") and ds.distances.dims == ("pair", "step")
        assert ds.status.dims == ("pair",) and ds.seconds.dims == ("batch",)
        assert (ds.energy.values == root["optimal/energy"][:]).all()
        metrics = xarray.open_zarr({store!r}, group="optimal/metrics", consolidated=False)
        assert (metrics.energy.values == root["optimal/energy"][:]).all()
        assert "fastgeo" not in sys.modules
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    energy = zarr.open_group(store, mode="r")["optimal/energy"][:].mean()
    assert out.stdout.split()[0] == repr(float(energy)) and out.stdout.split()[-1] == "auto"
