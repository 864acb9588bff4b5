"""``fastgeo bench``: kernel benchmarks beside their references, as a table (fastgeo.benchmarks)."""
import argparse
import sys

from . import UserError
from ._common import name_list, positive_int


def shape(parts):
    """An argparse type for shapes such as 100000x512."""
    def parse(text):
        try:
            values = tuple(int(v) for v in text.lower().split("x"))
        except ValueError:
            values = ()
        if len(values) != parts or min(values) < 1:
            raise argparse.ArgumentTypeError(f"expected {parts} positive integers joined by 'x', got {text!r}")
        return values

    return parse


def add_parser(subparsers):
    from fastgeo.benchmarks import SIZES

    parser = subparsers.add_parser(
        "bench", help="benchmark the kernels against scipy / numpy / torch references",
        description="Time fastgeo's kernels on every backend available here, beside the references "
                    "users would otherwise reach for, and the memory bandwidth of a plain copy measured "
                    "in the same run. Prints a table and writes bench.json, bench.md and bench.csv. "
                    "Every timed result is first checked against a float64 reference; a wrong one is "
                    "reported without a time, and the command then exits with status 1.")
    parser.add_argument("--size", choices=list(SIZES), default="quick",
                        help="problem sizes: tiny (seconds, for tests), quick (default, under a minute on a "
                             "laptop CPU), full (the sizes of the performance targets)")
    parser.add_argument("--only", type=name_list("fastgeo.benchmarks:BENCHMARKS", "benchmarks"), default=None,
                        metavar="LIST",
                        help="benchmarks to run, comma-separated: radial, kde, path, interpolate (default: all)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto: every device with an available backend (default)")
    parser.add_argument("--radial", type=shape(2), metavar="MxD", help="radial ri: M points of dimension D")
    parser.add_argument("--kde", type=shape(2), metavar="NxQ", help="KDE cdf: N samples, Q queries")
    parser.add_argument("--path", type=shape(3), metavar="BxKxN",
                        help="path energy: B paths, K segments, N decoded values per point")
    parser.add_argument("--repeats", type=positive_int, help="timed repeats (the minimum is reported)")
    parser.add_argument("--torch-compile", choices=["auto", "on", "off"], default="auto",
                        help="time torch.compile of the path energy (auto: only at --size full; compiling "
                             "takes tens of seconds on a CPU)")
    parser.add_argument("--out", default="fastgeo-bench", metavar="DIR",
                        help="directory for bench.json, bench.md and bench.csv (default: ./fastgeo-bench)")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(run=run)
    return parser


def run(args):
    from fastgeo import benchmarks
    from fastgeo.backends import availability

    if args.device == "cuda" and availability()["cuda"] is not None:
        raise UserError(f"--device cuda: the CUDA backend is not available here: {availability()['cuda']}")
    shapes = {k: v for k, v in (("radial", args.radial), ("kde", args.kde), ("path", args.path)) if v}
    result = benchmarks.run(
        size=args.size, only=args.only or benchmarks.BENCHMARKS,
        devices=None if args.device == "auto" else [args.device], shapes=shapes, repeats=args.repeats,
        torch_compile={"auto": None, "on": True, "off": False}[args.torch_compile],
        progress=not args.no_progress)
    print(benchmarks.markdown(result))
    paths = benchmarks.write(result, args.out)
    print("written: " + ", ".join(paths.values()))
    wrong = [r for r in result["rows"] if r["note"].startswith(benchmarks.WRONG_RESULT)]
    for r in wrong:  # a check rejected what the implementation returned: no time is reported for it
        print(f"fastgeo bench: {r['benchmark']} | {r['implementation']} ({r['device']}): {r['note']}",
              file=sys.stderr)
    return 1 if wrong else 0
