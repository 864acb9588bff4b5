"""Cold and warm first calls, repeated: bench/first_call.py and `fastgeo demo` in fresh processes.

Cold: after deleting every Numba cache file (*.nbi, *.nbc) of the tree; warm: the next process,
the cache on disk. Rounds interleave cold and warm runs and record the load average before each
(this machine is shared). The demo runs as users run it (its background compile helper on where
a CPU is spare: fastgeo/commands/_background.py) and, with --demo-alone, also with the helper
off (FASTGEO_BACKGROUND_COMPILE=0) in the same rounds. Writes the runs and their [min, max] per
figure as JSON.

    python bench/first_call_runs.py --tree . --rounds 3 --demo-rounds 2 --json bench/results/<name>.json
"""
import argparse
import json
import os
import pathlib
import tempfile
import time

from fastgeo.benchmarks import describe_machine, last_json, run_python, save_json


def clear_cache(tree):
    for pattern in ("*.nbi", "*.nbc"):
        for f in pathlib.Path(tree).rglob(pattern):
            f.unlink()


def run(tree, args, **env_vars):
    # NUMBA_CACHE_DIR unset: the cache next to the tree's sources, which clear_cache empties
    return run_python(args, tree=tree, env={"NUMBA_CACHE_DIR": None, **env_vars})


def first_call(tree, dtype):
    out, _, load = run(tree, ["bench/first_call.py", "--dtype", dtype])
    return dict(last_json(out), load_average=load)


def demo(tree, **env_vars):
    with tempfile.TemporaryDirectory() as d:
        _, seconds, load = run(tree, ["-m", "fastgeo", "demo", "--out", d, "--no-progress"], **env_vars)
    return {"seconds": seconds, "load_average": load}


def spans(runs):
    keys = [k for k in runs[0] if k != "load_average"]
    return {k: [min(r[k] for r in runs), max(r[k] for r in runs)] for k in keys}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=".")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--demo-rounds", type=int, default=2)
    parser.add_argument("--demo-alone", action="store_true",
                        help="each demo round also runs the demo cold and warm with its background helper off")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    runs = {"cold": [], "warm": [], "cold_float64": [], "demo_cold": [], "demo_warm": [], "demo_cold_alone": [],
            "demo_warm_alone": []}
    for r in range(args.rounds):
        clear_cache(args.tree)
        runs["cold"].append(first_call(args.tree, "float32"))
        runs["warm"].append(first_call(args.tree, "float32"))
        clear_cache(args.tree)
        runs["cold_float64"].append(first_call(args.tree, "float64"))
        print(f"round {r + 1}: cold ri {runs['cold'][-1]['ri_f32_first_s']:.2f} s, "
              f"float64 {runs['cold_float64'][-1]['ri_f64_first_s']:.2f} s", flush=True)
    for r in range(args.demo_rounds):
        clear_cache(args.tree)
        runs["demo_cold"].append(demo(args.tree))
        runs["demo_warm"].append(demo(args.tree))
        print(f"demo round {r + 1}: cold {runs['demo_cold'][-1]['seconds']:.1f} s, "
              f"warm {runs['demo_warm'][-1]['seconds']:.1f} s", flush=True)
        if args.demo_alone:
            clear_cache(args.tree)
            runs["demo_cold_alone"].append(demo(args.tree, FASTGEO_BACKGROUND_COMPILE="0"))
            runs["demo_warm_alone"].append(demo(args.tree, FASTGEO_BACKGROUND_COMPILE="0"))
            print(f"  helper off: cold {runs['demo_cold_alone'][-1]['seconds']:.1f} s, "
                  f"warm {runs['demo_warm_alone'][-1]['seconds']:.1f} s", flush=True)
    result = {"benchmark": "first-call", "machine": describe_machine(), "tree": os.path.abspath(args.tree),
              "how": __doc__.strip(), "when": time.strftime("%Y-%m-%d %H:%M:%S"),
              "spans": {k: spans(v) for k, v in runs.items() if v}, "runs": runs}
    for suffix in ("", "_alone"):
        cold, warm = runs["demo_cold" + suffix], runs["demo_warm" + suffix]
        if cold:
            ratios = [c["seconds"] / w["seconds"] for c, w in zip(cold, warm)]
            result["spans"]["demo_cold_over_warm" + suffix] = [min(ratios), max(ratios)]
    print(json.dumps(result["spans"], indent=1))
    if args.json:
        save_json(result, args.json)


if __name__ == "__main__":
    main()
