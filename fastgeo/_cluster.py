"""Where interpolate_many runs: a ``distributed.Client`` from what the caller gave, and the
SIGTERM guard that lets a run stop as after Ctrl-C."""
from __future__ import annotations

import contextlib
import os
import signal
import threading

from ._errors import one_line

CONNECT_TIMEOUT = 10.0


@contextlib.contextmanager
def connect(client=None, timeout=CONNECT_TIMEOUT):
    """A ``distributed.Client``: ``None`` or ``"local"`` starts a LocalCluster (one
    single-threaded worker process per core; ``"local:N"`` for N), an address
    (``"tcp://host:port"``) connects to a running scheduler within ``timeout`` seconds, and a
    Client is used as given (and not closed)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("interpolate_many needs dask.distributed: pip install 'fastgeo[distributed]'") from None
    if isinstance(client, Client):
        yield client
        return
    if client is None or (isinstance(client, str) and (client == "local" or client.startswith("local:"))):
        n = os.cpu_count() or 1
        if isinstance(client, str) and client.startswith("local:"):
            text = client.partition(":")[2]
            if not text.isdigit() or int(text) < 1:
                raise ValueError(f"scheduler 'local:N' needs a worker count N >= 1, got {client!r}")
            n = int(text)
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as c:
            yield c
        return
    if not isinstance(client, str):
        raise TypeError(f"client must be None, 'local[:N]', a scheduler address or a distributed.Client, "
                        f"got {type(client).__name__}")
    try:
        c = Client(client, timeout=timeout)
    except (OSError, TimeoutError) as err:
        raise ConnectionError(f"no Dask scheduler answered at {client} within {timeout:g} s "
                              f"({one_line(err, with_type=False)})") from None
    with c:
        yield c


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt in the main thread, so that the run stops as after
    Ctrl-C: its tasks cancelled, a cluster it started shut down (the store is consistent
    either way: a batch is marked done only after all of it is written)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
            signal.SIG_DFL, None):
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
