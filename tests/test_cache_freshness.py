"""Numba's on-disk cache is kept in step with the kernels' sources (kernels/cache_freshness.py):
a cached function that inlines another file's function is recompiled after that file changes."""
import os
import subprocess
import sys
import textwrap

from fastgeo.kernels import cache_freshness

#: a package of two files: b's cached function inlines a's, as cpu_radial inlines special_gamma
CALLEE = "from numba import njit\n\n@njit(cache=True)\ndef f():\n    return {value}\n"
CALLER = "from numba import njit\nfrom .a import f\n\n@njit(cache=True)\ndef g():\n    return f() + 1.0\n"
RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    if sys.argv[2] == "refresh":
        from fastgeo.kernels.cache_freshness import refresh
        refresh(sys.argv[1] + "/pkg", sources=sys.argv[1] + "/pkg")
    from pkg.b import g
    print(g())
""")


def _write_package(root, value):
    pkg = root / "pkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(CALLEE.format(value=value))
    (pkg / "b.py").write_text(CALLER)


def _g(root, mode, env):
    out = subprocess.run([sys.executable, "-c", RUN, str(root), mode], check=True, capture_output=True, text=True,
                         env=env)
    return float(out.stdout.strip())


def test_a_changed_callee_recompiles_its_cached_callers(tmp_path, monkeypatch):
    """In-tree cache and NUMBA_CACHE_DIR: after a.py changes, g (in the unchanged b.py) gives the
    new value when the folder is refreshed before import."""
    for cache_dir in (None, tmp_path / "numba-cache"):
        root = tmp_path / ("user" if cache_dir else "tree")
        root.mkdir()
        env = dict(os.environ)
        env.pop("NUMBA_CACHE_DIR", None)
        if cache_dir:
            env["NUMBA_CACHE_DIR"] = str(cache_dir)
        _write_package(root, "1.0")
        assert _g(root, "refresh", env) == 2.0
        assert _g(root, "refresh", env) == 2.0  # from the cache, which the refresh kept
        _write_package(root, "5.0")
        assert _g(root, "refresh", env) == 6.0, f"stale cached caller (NUMBA_CACHE_DIR={cache_dir})"


def test_refresh_deletes_only_when_the_sources_change(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "k.py").write_text("x = 1\n")
    cache = src / "__pycache__"
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)

    def cached():
        cache.mkdir(exist_ok=True)
        for name in ("k.f-3.py311.nbi", "k.f-3.py311.1.nbc", "k.cpython-311.pyc"):
            (cache / name).write_text("")

    cached()
    assert cache_freshness.refresh(str(src), sources=str(src))  # no digest recorded yet
    assert sorted(os.listdir(cache)) == sorted(["k.cpython-311.pyc", cache_freshness.STAMP])
    cached()
    assert not cache_freshness.refresh(str(src), sources=str(src))
    assert len(os.listdir(cache)) == 4
    (src / "k.py").write_text("x = 2\n")
    assert cache_freshness.refresh(str(src), sources=str(src))
    assert not any(name.endswith((".nbi", ".nbc")) for name in os.listdir(cache))
    assert not cache_freshness.refresh(str(src), sources=str(src))


def test_the_numba_cache_dir_layout_is_numbas(tmp_path, monkeypatch):
    """cache_folders finds the folder Numba itself uses under NUMBA_CACHE_DIR."""
    from numba.core import caching

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    source = os.path.join(cache_freshness.KERNELS, "radial.py")
    expected = os.path.join(str(tmp_path), caching._CacheLocator.get_suitable_cache_subpath(source))
    assert cache_freshness.cache_folders(cache_freshness.KERNELS)[1] == expected


def test_importing_fastgeo_records_the_kernels_digest():
    stamp = os.path.join(cache_freshness.cache_folders(cache_freshness.KERNELS)[0], cache_freshness.STAMP)
    if os.access(cache_freshness.KERNELS, os.W_OK):
        with open(stamp) as fh:
            assert fh.read().strip() == cache_freshness.sources_digest()
