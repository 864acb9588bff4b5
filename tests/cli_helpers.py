"""Running ``fastgeo`` in-process in tests, and the shape of its one-line errors."""
import contextlib
import io

from fastgeo import cli


def run_cli(argv):
    """(status, stdout, stderr) of an in-process ``fastgeo`` run; argparse exits count as status."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue()


def assert_one_line(status, err, *words):
    """A user mistake: exit status 2, one line on stderr naming the command, no traceback."""
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("fastgeo") and "error:" in err and "Traceback" not in err
    for w in words:
        assert w in err, err
