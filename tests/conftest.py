"""Shared test fixtures.

Random inputs use a fresh seed on every run (so the suite keeps exploring), printed with any
failure; set FASTGEO_TEST_SEED=<seed> to replay one.
"""
import os

import numpy as np
import pytest

from fastgeo.kernels.cache_freshness import refresh

# the tests' own cached loops (test_special.py) call the kernels: recompiled when they change
refresh(os.path.dirname(os.path.abspath(__file__)))

# one seed for every hypothesis test of the run (tests/test_properties.py), printed below
os.environ.setdefault("FASTGEO_HYPOTHESIS_SEED", str(np.random.SeedSequence().entropy % (2**32)))
# the demo's background compile helper stays off: a test run is no first run, and a helper
# would share the CPUs with the tests (tests/test_background_compile.py turns it on)
os.environ["FASTGEO_BACKGROUND_COMPILE"] = "0"


def pytest_report_header(config):
    seed = os.environ["FASTGEO_HYPOTHESIS_SEED"]
    return f"hypothesis seed: {seed} (replay the property tests with FASTGEO_HYPOTHESIS_SEED={seed})"


@pytest.fixture
def seed(request):
    value = int(os.environ.get("FASTGEO_TEST_SEED") or np.random.SeedSequence().entropy % (2**63))
    request.node.user_properties.append(("seed", value))
    return value


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        seeds = [v for k, v in item.user_properties if k == "seed"]
        if seeds:
            report.sections.append(("fastgeo", f"replay with FASTGEO_TEST_SEED={seeds[0]}"))


