"""`--cluster ADDRESS`: explore's blocks over an existing Dask distributed cluster (docs/explore.md).

The search hands out the same pieces of work as with `--workers` (stage 1's
blocks, stage 2's combinations, or the exhaustive search's combinations) and
reduces what comes back in the order it handed them out, so the result is the
one-worker result. The program travels to the workers once (scattered to each,
as its parsed form: the workers need attnlang installed, not the program's
files), and each worker process keeps its spaces for the next pieces of the
same search.

Dask distributed rather than Ray: it is pure Python from PyPI (Ray ships a
large native runtime), its `Client(address)` joins a cluster a site already
runs, and its `LocalCluster` starts real worker processes on one machine for
the tests. It is an optional extra (`pip install 'attnlang[cluster]'`),
imported only when a search names a cluster.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import uuid
from collections import OrderedDict
from typing import Callable, Iterator

from ..diagnostics import UsageError
from .heap import keep_heap

#: how long to wait for the scheduler to answer, and for it to have a worker, unless told otherwise
CONNECT_TIMEOUT_S = 10.0


def _distributed():
    try:
        import distributed
    except ImportError:
        raise UsageError("--cluster needs Dask distributed: pip install 'attnlang[cluster]'") from None
    return distributed


@contextlib.contextmanager
def _quiet():
    """Dask logs each failed try to connect, and its client's shutdown, at warning level: our error says it
    once instead."""
    logs = [logging.getLogger(n) for n in ("distributed", "distributed.client", "distributed.comm.core",
                                           "distributed.core", "distributed.batched")]
    levels = [lg.level for lg in logs]
    for lg in logs:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(logs, levels, strict=True):
            lg.setLevel(level)


def connect(cluster, timeout: float):
    """A Client of the scheduler at cluster (an address), or cluster itself if it is a Client; and whether
    the caller owns it (closes it). UsageError when there is no scheduler there, or it has no worker,
    within timeout seconds."""
    distributed = _distributed()
    if isinstance(cluster, distributed.Client):
        return cluster, False
    if not isinstance(cluster, str) or not cluster.strip():
        raise UsageError(f"--cluster takes the address of a Dask scheduler (tcp://HOST:PORT), not {cluster!r}")
    if not timeout > 0:
        raise UsageError(f"--cluster-timeout takes a positive number of seconds, not {timeout}")
    address = _address(cluster.strip())
    with _quiet():
        _probe(address, timeout)
        try:
            client = distributed.Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (OSError, ValueError, TypeError) as exc:  # gone since the probe
            raise UsageError(f"--cluster {address}: the scheduler stopped answering ({_why(exc)})") from None
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            client.close()
            raise UsageError(f"--cluster {address}: the scheduler has no worker (waited {timeout:g} s)") from None
    return client, True


def _probe(address: str, timeout: float) -> None:
    """Ask what answers at address who it is, all within timeout seconds (Dask's client alone can wait
    on a server that accepts and says nothing); UsageError unless it is a Dask scheduler. In a thread of
    its own, whatever event loop the caller runs."""
    import asyncio

    from distributed.comm import connect as dask_connect

    async def ask():
        comm = await dask_connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            await comm.close()

    got: dict = {}

    def run() -> None:
        try:
            got["reply"] = asyncio.run(asyncio.wait_for(ask(), timeout))
        except BaseException as exc:  # noqa: B036  (reported below, in the caller's thread)
            got["error"] = exc

    t = threading.Thread(target=run, name="attn-cluster-probe", daemon=True)
    t.start()
    t.join(timeout + 5)
    reply, exc = got.get("reply"), got.get("error")
    if reply is None:
        why = "no answer" if exc is None else _why(exc)
        raise UsageError(f"--cluster {address}: no Dask scheduler answered within {timeout:g} s ({why})")
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        what = reply.get("type") if isinstance(reply, dict) else None
        raise UsageError(f"--cluster {address}: what answered is not a Dask scheduler"
                         + (f" (a {what})" if isinstance(what, str) else ""))


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):  # asyncio's too, since Python 3.11
        return "timed out"
    return str(exc).strip() or type(exc).__name__


def _address(address: str) -> str:
    """The address in Dask's form (tcp:// when it names no scheme); UsageError when it is no address."""
    from distributed.comm.addressing import normalize_address, parse_address, parse_host_port

    try:
        full = normalize_address(address)
        scheme, location = parse_address(full)
        if scheme not in ("tcp", "tls", "ws", "wss", "ucx"):
            raise ValueError(f"Dask's schemes between processes are tcp, tls, ws, wss and ucx, not {scheme}")
        if scheme != "ucx":
            port = parse_host_port(location)[1]
            if not 0 < int(port) < 65536:
                raise ValueError(f"port {port} is out of range")
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--cluster {address}: not the address of a Dask scheduler ({exc}); it looks like "
                         "tcp://HOST:PORT") from None
    return full


@contextlib.contextmanager
def cluster_map(cluster, prog, names, defines, make_spaces: Callable,
                timeout: float = CONNECT_TIMEOUT_S) -> Iterator[tuple]:
    """(threads, imap) for a search over the cluster: imap(fn, jobs, small=False) yields fn(job, spaces) for
    each job, in order, computed on the workers (small: the jobs are short, batch them); threads is how
    many pieces the cluster runs at once. fn must be a module-level function (the workers import it), as
    must make_spaces(prog, names, defines), which makes the search's spaces on a worker."""
    client, own = connect(cluster, timeout)
    try:
        with _quiet():
            threads = max(1, sum(client.nthreads().values()))
            program = client.scatter(prog, broadcast=True, hash=False)
        key = uuid.uuid4().hex
        call = functools.partial(_on_worker, key=key, names=names, defines=defines, make_spaces=make_spaces)

        def imap(fn: Callable, jobs: list, small: bool = False) -> Iterator:
            # Small pieces (stage 2's walks: a few milliseconds each, about what a task costs Dask) go in
            # batches, about four per thread; the others (stage 1's blocks) one a task, for the balance.
            jobs = list(jobs)
            per = max(1, -(-len(jobs) // (4 * threads))) if small else 1
            batches = [jobs[i:i + per] for i in range(0, len(jobs), per)]
            futures = client.map(functools.partial(call, fn), batches, prog=program, pure=False)
            try:
                for i in range(len(futures)):
                    got = _result(futures[i])
                    futures[i] = None  # let the scheduler forget what is gathered
                    yield from got
            finally:
                rest = [f for f in futures if f is not None]
                if rest:
                    client.cancel(rest)

        yield threads, imap
    finally:
        if own:
            with _quiet():
                client.close()


def _result(future):
    try:
        return future.result()
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "attnlang":
            raise UsageError("--cluster: the cluster's workers cannot import attnlang; install it where they "
                             "run") from None
        raise


# ---------------------------------------------------------------- on a worker

#: per worker process: the spaces of the last few searches, by the search's key
_SPACES: OrderedDict = OrderedDict()
_LOCK = threading.Lock()
_KEEP = 4


def _on_worker(fn: Callable, batch: list, key: str, names, defines, make_spaces: Callable, prog) -> list:
    """fn(job, spaces) for each job of the batch, with this search's spaces made once per worker process."""
    with _LOCK:
        sps = _SPACES.get(key)
        if sps is None:
            sps = _SPACES[key] = make_spaces(prog, names, defines)
            while len(_SPACES) > _KEEP:
                _SPACES.popitem(last=False)
        else:
            _SPACES.move_to_end(key)
    with keep_heap():
        return [fn(job, sps) for job in batch]
