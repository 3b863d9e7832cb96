"""`attn explore --cluster`: the search over a Dask cluster of two worker processes gives one worker's result."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time

import pytest

from attnlang.api import explore, load_program
from attnlang.diagnostics import UsageError

distributed = pytest.importorskip("distributed", reason="--cluster needs Dask distributed (attnlang[cluster])")

SMALL_CODESIGN = ["-D", "N=256", "-D", "R=32", "-D", "SRAM=512"]


@pytest.fixture(scope="module")
def local_cluster():
    """A scheduler and two worker processes on this machine, as a site's cluster would be."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as c:
        yield c


@pytest.fixture
def cluster(local_cluster) -> str:
    return local_cluster.scheduler_address


def _same(a: dict, b: dict) -> None:
    """Everything but the timings."""
    for r in (a, b):
        r.pop("seconds", None)
        r.pop("rate", None)
        for stage in ("stage1", "stage2"):
            (r.get(stage) or {}).pop("seconds", None)
    assert a == b


def test_two_stage_search_on_the_cluster_is_one_workers(cluster, repo_root):
    path = str(repo_root / "examples" / "codesign.attn")
    defines = {"N": 256, "R": 32, "SRAM": 512}
    one = explore(path, defines=defines, top=5)
    spread = explore(path, defines=defines, top=5, cluster=cluster)
    assert one.stage1["candidates"] > 10_000
    _same(one.to_json(), spread.to_json())


def test_exhaustive_search_on_the_cluster_is_one_workers(cluster, repo_root):
    path = str(repo_root / "examples" / "mmee.attn")
    one = explore(path, defines={"N": 256}, exhaustive=True, minimize="edp")
    spread = explore(path, defines={"N": 256}, exhaustive=True, minimize="edp", cluster=cluster)
    assert one.evaluated > 1000
    _same(one.to_json(), spread.to_json())


def test_the_command_with_a_cluster(attn_main, cluster, repo_root):
    path = str(repo_root / "examples" / "codesign.attn")
    status, out, err = attn_main("explore", path, *SMALL_CODESIGN, "--json", "--top", "3")
    assert status == 0, err
    status, spread, err = attn_main("explore", path, *SMALL_CODESIGN, "--json", "--top", "3", "--cluster", cluster)
    assert status == 0, err
    _same(json.loads(out), json.loads(spread))


def test_the_workers_need_no_file(cluster, repo_root):
    """The program travels to the workers: source text with no file behind it runs there too."""
    text = (repo_root / "examples" / "mmee.attn").read_text()
    prog = load_program(text)
    assert prog.root.startswith("<")
    one = explore(prog, defines={"N": 256}, top=3)
    _same(one.to_json(), explore(prog, defines={"N": 256}, top=3, cluster=cluster).to_json())


def test_an_open_client_is_used_and_left_open(cluster, repo_root):
    path = str(repo_root / "examples" / "mmee.attn")
    with distributed.Client(cluster) as client:
        one = explore(path, defines={"N": 256}, top=3, exhaustive=True)
        _same(one.to_json(), explore(path, defines={"N": 256}, top=3, exhaustive=True, cluster=client).to_json())
        assert client.status == "running"


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_no_scheduler_there_is_exit_2_within_the_timeout(attn_main, repo_root):
    mmee = str(repo_root / "examples" / "mmee.attn")
    t0 = time.perf_counter()
    status, out, err = attn_main("explore", mmee, "--cluster", f"tcp://127.0.0.1:{_closed_port()}",
                                 "--cluster-timeout", "1")
    assert status == 2 and out == ""
    assert "no Dask scheduler answered within 1 s" in err and "Traceback" not in err
    assert time.perf_counter() - t0 < 8


def test_a_server_that_says_nothing_is_no_hang(attn_main, repo_root):
    """A port that accepts and never answers (Dask's client alone would wait on it)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()
    held = []

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        t0 = time.perf_counter()
        status, out, err = attn_main("explore", str(repo_root / "examples" / "mmee.attn"), "--cluster",
                                     f"127.0.0.1:{server.getsockname()[1]}", "--cluster-timeout", "1")
        assert time.perf_counter() - t0 < 8
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        server.close()
    assert status == 2
    assert "no Dask scheduler answered within 1 s" in err and "Traceback" not in err


def test_a_workers_address_is_no_schedulers(attn_main, local_cluster, repo_root):
    worker = next(iter(local_cluster.workers.values())).worker_address
    status, out, err = attn_main("explore", str(repo_root / "examples" / "mmee.attn"), "--cluster", worker,
                                 "--cluster-timeout", "2")
    assert status == 2 and "what answered is not a Dask scheduler (a Worker)" in err


def test_a_scheduler_without_workers(attn_main, repo_root):
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0", silence_logs=50) as empty:
        t0 = time.perf_counter()
        status, out, err = attn_main("explore", str(repo_root / "examples" / "mmee.attn"), "--cluster",
                                     empty.scheduler_address, "--cluster-timeout", "1")
        assert time.perf_counter() - t0 < 8
    assert status == 2 and "the scheduler has no worker (waited 1 s)" in err and "Traceback" not in err


@pytest.mark.parametrize("address,message", [
    ("not an address", "not the address of a Dask scheduler"),
    ("tcp://127.0.0.1:99999", "port 99999 is out of range"),
    ("inproc://here", "not inproc"),
])
def test_bad_addresses_are_exit_2(attn_main, repo_root, address, message):
    status, out, err = attn_main("explore", str(repo_root / "examples" / "mmee.attn"), "--cluster", address)
    assert status == 2 and message in err and "Traceback" not in err


def test_workers_and_a_cluster_are_one_too_many(attn_main, repo_root):
    status, out, err = attn_main("explore", str(repo_root / "examples" / "mmee.attn"), "--cluster",
                                 "tcp://127.0.0.1:1", "--workers", "2")
    assert status == 2 and "--workers and --cluster: pick one" in err
    status, out, err = attn_main("explore", str(repo_root / "examples" / "mmee.attn"), "--cluster-timeout", "3")
    assert status == 2 and "--cluster-timeout goes with --cluster" in err


def test_without_dask_the_error_says_what_to_install(attn_main, repo_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    status, out, err = attn_main("explore", str(repo_root / "examples" / "mmee.attn"), "--cluster",
                                 "tcp://127.0.0.1:8786")
    assert status == 2
    assert "--cluster needs Dask distributed: pip install 'attnlang[cluster]'" in err and "Traceback" not in err
    with pytest.raises(UsageError, match="attnlang\\[cluster\\]"):
        explore(str(repo_root / "examples" / "mmee.attn"), cluster="tcp://127.0.0.1:8786")
