"""Two processes adding entries to one Numba cache index at once (kernels/cache_lock.py): each
entry keeps its own machine code, and a later process loads both."""
import os
import subprocess
import sys
import textwrap
import time

MODULE = "from numba import njit\n\n@njit(cache=True)\ndef f(x):\n    return x * 2\n"
#: saves one signature of f, its index write slowed so that the two processes' saves overlap
WRITER = textwrap.dedent("""
    import sys, time
    root, start, arg, lock = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4] == "lock"
    sys.path.insert(0, root)
    if lock:
        import fastgeo.kernels  # installs the lock when Numba's caching module is imported
    import numba.core.caching as caching
    save_index = caching.IndexDataCacheFile._save_index
    def slow(self, overloads):
        time.sleep(1.0)
        save_index(self, overloads)
    caching.IndexDataCacheFile._save_index = slow
    from pkg.m import f
    time.sleep(max(0.0, start - time.time()))
    f(int(arg) if arg == "1" else float(arg))
""")
CHECKER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from pkg.m import f
    a, b = f(1), f(1.5)
    assert (a, type(a)) == (2, int) and (b, type(b)) == (3.0, float), (a, b)
    assert not f.stats.cache_misses, f"compiled again: {dict(f.stats.cache_misses)}"
""")


def race(root, lock):
    pkg = root / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "m.py").write_text(MODULE)
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)
    start = time.time() + 4.0  # both processes have imported Numba by then
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(start), arg, lock], env=env)
               for arg in ("1", "1.5")]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    return subprocess.run([sys.executable, "-c", CHECKER, str(root)], env=env, capture_output=True, text=True)


def test_concurrent_saves_keep_every_entry(tmp_path):
    checked = race(tmp_path, "lock")
    assert checked.returncode == 0, checked.stderr[-2000:]


def test_the_lock_wraps_numbas_save_once():
    import numba.core.caching as caching

    from fastgeo.kernels import cache_lock

    assert hasattr(caching.IndexDataCacheFile.save, "fastgeo_unlocked")  # installed by import fastgeo
    assert cache_lock.patch(caching)
    assert not hasattr(caching.IndexDataCacheFile.save.fastgeo_unlocked, "fastgeo_unlocked")  # not twice
