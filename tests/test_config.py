"""Backend selection: argument, block, process default, environment; and fastgeo.info()."""
import subprocess
import sys

import numpy as np
import pytest

import fastgeo
from fastgeo import backends
from fastgeo._arrays import kind_of
from fastgeo.priors import StandardNormal


def chosen(backend="auto"):
    return backends.select(backend, kind_of(np.ones(2))).name


def test_auto_picks_the_numba_cpu_backend_for_numpy_inputs():
    assert chosen() == "cpu"
    assert fastgeo.info()["auto"]["cpu"] == "cpu"


def test_block_setting_and_its_precedence(monkeypatch):
    monkeypatch.delenv("FASTGEO_BACKEND", raising=False)
    with fastgeo.use_backend("reference"):
        assert chosen() == "reference"
        assert chosen("cpu") == "cpu"  # an explicit argument wins
        with fastgeo.use_backend("cpu"):
            assert chosen() == "cpu"
        assert chosen() == "reference"
    assert chosen() == "cpu"
    fastgeo.set_backend("reference")
    try:
        assert chosen() == "reference"
        with fastgeo.use_backend("cpu"):
            assert chosen() == "cpu"
    finally:
        fastgeo.set_backend(None)
    assert chosen() == "cpu"


def test_environment_variable(monkeypatch):
    monkeypatch.setenv("FASTGEO_BACKEND", "reference")
    assert chosen() == "reference"
    with fastgeo.use_backend("cpu"):
        assert chosen() == "cpu"
    monkeypatch.setenv("FASTGEO_BACKEND", "gpu-please")
    with pytest.raises(ValueError, match="FASTGEO_BACKEND"):
        chosen()


def test_results_do_not_depend_on_how_the_backend_was_chosen(rng, monkeypatch):
    z = rng.normal(size=(20, 7))
    prior = StandardNormal(7)
    ref = fastgeo.log_ri(z, prior, backend="reference")
    with fastgeo.use_backend("reference"):
        np.testing.assert_array_equal(fastgeo.log_ri(z, prior), ref)
    monkeypatch.setenv("FASTGEO_BACKEND", "reference")
    np.testing.assert_array_equal(fastgeo.log_ri(z, prior), ref)


def test_invalid_names():
    with pytest.raises(ValueError, match="backend must be one of"):
        fastgeo.use_backend("fast").__enter__()
    with pytest.raises(ValueError, match="backend must be one of"):
        fastgeo.set_backend(3)


def test_info_reports_backends_and_versions():
    info = fastgeo.info()
    assert set(info["backends"]) >= {"cpu", "reference", "cuda"}
    assert info["backends"]["cpu"] is None and info["backends"]["reference"] is None
    text = str(info)
    assert "auto picks: cpu" in text and "numpy" in text and info["fastgeo"] == fastgeo.__version__


def test_import_is_quiet_and_does_not_compile():
    code = ("import sys, fastgeo; fastgeo.info(); "
            "assert 'fastgeo.kernels.cpu_radial' not in sys.modules, 'kernels imported at import time'")
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True)
