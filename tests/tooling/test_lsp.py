"""`attn lsp` over stdio, spoken to in JSON-RPC with Content-Length framing, as an editor would.

One server process serves the whole module; every read has a timeout, so a
hung server fails the test instead of hanging it. The plain functions the
server calls (attnlang.lsp.features) are tested directly as well.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("attnlang") is None:
    sys.path.insert(0, str(ROOT))

from attnlang.lsp import features as F  # noqa: E402

TIMEOUT_S = 10.0
needs_pygls = pytest.mark.skipif(importlib.util.find_spec("pygls") is None or
                                 importlib.util.find_spec("lsprotocol") is None,
                                 reason="pygls is not installed (pip install 'attnlang[lsp]')")

PROGRAM = """\
use hw.edge

kernel tiny(Q: f16[N, d]) -> (O: f16[N, d])
  on edge
  spec O = Q * 2
{
  dim N = 64, d = 32
  param Br in {16, 32} = 16
  for i in 0 .. N by Br {
    q = load Q[i : i+Br, :] -> sram
    s = q * 2
    store s -> O[i : i+Br, :]
  }
}
"""
BROKEN = PROGRAM.replace("s = q * 2", "s = qq * 2")


def position(text: str, word: str, line_no: int) -> dict:
    """The LSP position of word on a 1-based line."""
    line = text.split("\n")[line_no - 1]
    return {"line": line_no - 1, "character": line.index(word)}


class Client:
    """A minimal LSP client: requests wait for their response, notifications are queued."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "attnlang", "lsp"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.decode("ascii").strip()
                if not line:
                    break
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            body = out.read(int(headers["content-length"]))
            self.messages.put(json.loads(body))

    def send(self, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.proc.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: dict | None) -> object:
        self.next_id += 1
        rid = self.next_id
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        msg = self.wait(lambda m: m.get("id") == rid and "method" not in m)
        assert "error" not in msg, msg
        return msg.get("result")

    def wait(self, match) -> dict:
        deadline = time.monotonic() + TIMEOUT_S
        skipped = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching message from the server in {TIMEOUT_S} s; got {skipped}")
                try:
                    msg = self.messages.get(timeout=left)
                except queue.Empty:
                    continue
                if match(msg):
                    return msg
                skipped.append(msg)
        finally:
            for m in skipped:
                self.messages.put(m)

    def diagnostics_for(self, uri: str, version: int) -> list:
        msg = self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                        and m["params"]["uri"] == uri and m["params"].get("version") == version)
        return msg["params"]["diagnostics"]


@pytest.fixture(scope="module")
def server():
    if importlib.util.find_spec("pygls") is None:
        pytest.skip("pygls is not installed (pip install 'attnlang[lsp]')")
    c = Client()
    result = c.request("initialize", {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}})
    caps = result["capabilities"]
    assert caps["hoverProvider"] and caps["definitionProvider"] and caps["documentSymbolProvider"]
    assert "@" in caps["completionProvider"]["triggerCharacters"]
    c.notify("initialized", {})
    yield c
    if c.proc.poll() is None:
        c.proc.kill()
    c.proc.wait(timeout=TIMEOUT_S)
    c.proc.stdout.close()
    c.proc.stdin.close()
    c.proc.stderr.close()


URI = (ROOT / "examples" / "lsp_test_doc.attn").as_uri()


@needs_pygls
def test_diagnostics_on_open_and_change(server):
    server.notify("textDocument/didOpen", {"textDocument": {"uri": URI, "languageId": "attn", "version": 1,
                                                            "text": BROKEN}})
    diags = server.diagnostics_for(URI, 1)
    assert [d["code"] for d in diags] == ["E0310"]
    start = position(BROKEN, "qq", 11)
    assert diags[0]["range"] == {"start": start, "end": {"line": start["line"], "character": start["character"] + 2}}
    assert diags[0]["severity"] == 1 and "qq" in diags[0]["message"]
    server.notify("textDocument/didChange", {"textDocument": {"uri": URI, "version": 2},
                                             "contentChanges": [{"text": PROGRAM}]})
    assert server.diagnostics_for(URI, 2) == []


@needs_pygls
def test_hover_definition_completion_symbols(server):
    server.notify("textDocument/didOpen", {"textDocument": {"uri": URI, "languageId": "attn", "version": 3,
                                                            "text": PROGRAM}})
    server.diagnostics_for(URI, 3)
    hover = server.request("textDocument/hover", {"textDocument": {"uri": URI},
                                                  "position": position(PROGRAM, "s = q", 11)})
    assert hover["contents"]["kind"] == "markdown"
    assert "value `s`: `f16[16, 32]` in `sram`" in hover["contents"]["value"]
    assert "**cost** of line 11" in hover["contents"]["value"]
    hover = server.request("textDocument/hover", {"textDocument": {"uri": URI},
                                                  "position": position(PROGRAM, "Br", 9)})
    assert "param `Br in {16, 32} = 16`" in hover["contents"]["value"]

    loc = server.request("textDocument/definition", {"textDocument": {"uri": URI},
                                                     "position": position(PROGRAM, "q * 2", 11)})
    assert loc["uri"] == URI and loc["range"]["start"] == position(PROGRAM, "q = load", 10)
    loc = server.request("textDocument/definition", {"textDocument": {"uri": URI},
                                                     "position": position(PROGRAM, "sram", 10)})
    assert loc["uri"].endswith("/attnlang/stdlib/hw/edge.attn") and loc["range"]["start"]["line"] > 0
    loc = server.request("textDocument/definition", {"textDocument": {"uri": URI},
                                                     "position": position(PROGRAM, "edge", 1)})
    assert Path(loc["uri"].removeprefix("file://")).is_file()

    done = server.request("textDocument/completion", {"textDocument": {"uri": URI},
                                                      "position": position(PROGRAM, "q * 2", 11)})
    labels = {item["label"] for item in done["items"]}
    assert {"q", "Q", "Br", "i", "sram", "vec", "rowmax", "load", "f16"} <= labels

    symbols = server.request("textDocument/documentSymbol", {"textDocument": {"uri": URI}})
    assert [(s["name"], [c["name"] for c in s["children"]]) for s in symbols] == [("tiny", ["N", "d", "Br"])]


@needs_pygls
def test_shutdown_and_exit(server):
    assert server.request("shutdown", None) is None
    server.notify("exit", None)
    assert server.proc.wait(timeout=TIMEOUT_S) == 0


# ---------------------------------------------------------------- the plain functions


def test_utf16_positions():
    text = "# 🙂 é\nuse hw.edge\n"
    assert F.utf16_column("🙂x", 2) == 2 and F.from_utf16("🙂x", 2) == 2
    assert F.to_range(text, F.Span("f", 1, 3, 1, 4)) == (0, 2, 0, 4)


def test_plain_functions_without_a_server(tmp_path):
    path = str(tmp_path / "doc.attn")
    hover = F.hover(PROGRAM, path, 8, PROGRAM.split("\n")[8].index("i in"))
    assert hover is not None and "loop index `i in 0 .. N by Br`" in hover.markdown
    assert "4 iterations" in hover.markdown
    wrong = PROGRAM.replace("on edge", "on nowhere")
    assert [d.code for d in F.diagnostics(wrong, path)] == ["E0105"]
    # a program being edited, its hardware misspelled: the value is still typed (Br = 16, d = 32 by hand;
    # no memory: that is the hardware's)
    line = wrong.split("\n")[10]
    hover = F.hover(wrong, path, 10, line.index("s ="))
    assert hover is not None and "value `s`: `f16[16, 32]`" in hover.markdown and "in `" not in hover.markdown


def test_without_pygls_it_says_how_to_install_it():
    code = ("import sys, importlib.metadata as md\n"
            "sys.modules['pygls'] = None  # as if it were not installed\n"
            "def version(name): raise md.PackageNotFoundError(name)\n"
            "md.version = version\n"
            "from attnlang.cli import main\n"
            "sys.exit(main(['lsp']))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT_S, env=env,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert "pip install 'attnlang[lsp]'" in proc.stderr and "Traceback" not in proc.stderr


def test_kernel_by_kernel_checking_gives_what_the_checker_gives(tmp_path):
    """Edits in one kernel, lines added above others: the kept diagnostics move with their kernels."""
    from attnlang.check import check
    from attnlang.diagnostics import sort_key
    from attnlang.lsp.incremental import check_document
    from attnlang.program import load_source

    two = PROGRAM + "\n" + BROKEN.replace("use hw.edge\n", "").replace("kernel tiny", "kernel other")
    path = str(tmp_path / "doc.attn")
    versions = [
        two,
        two.replace("  dim N = 64, d = 32\n", "  # a new line\n  dim N = 64, d = 32\n", 1),  # other moves down
        two.replace("store s -> O", "store t -> O", 1),  # a second error, in the first kernel
        two.replace("store s -> O", "store t -> O", 1).replace("s = qq * 2", "s = q * 2"),  # the first fixed
        two.replace("use hw.edge", "use hw.cloud"),  # what every kernel sees changes
    ]
    for text in versions:
        prog = load_source(text, path)
        want = sorted(check(load_source(text, path)), key=sort_key)
        got = check_document(prog, path, text)
        assert [d.to_json() for d in got] == [d.to_json() for d in want]
    assert {d.code for d in check_document(load_source(versions[2], path), path, versions[2])} == {"E0310"}


# ---------------------------------------------------------------- checks off the loop, cancelled by newer edits


def _slow_document() -> str:
    """A long straight-line kernel: seconds of checking (bench/bench_check_scaling.py's family)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_check_scaling

    return bench_check_scaling.straight(8000)


def _cpu_seconds(pid: int) -> float:
    """The user and system time a process has used so far (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def fresh_server():
    """A server of its own: no hover-cost run of an earlier test still busy in it."""
    c = Client()
    c.request("initialize", {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}})
    c.notify("initialized", {})
    yield c
    c.proc.kill()
    c.proc.wait(timeout=TIMEOUT_S)
    for f in (c.proc.stdout, c.proc.stdin, c.proc.stderr):
        f.close()


def _open(c: Client, uri: str, version: int, text: str) -> None:
    c.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "attn", "version": version,
                                                       "text": text}})


def _published(c: Client) -> list[tuple[str, int]]:
    """(uri, version) of every publishDiagnostics received so far, in order (the queue is left as it was)."""
    seen = []
    while True:
        try:
            seen.append(c.messages.get_nowait())
        except queue.Empty:
            break
    for m in seen:
        c.messages.put(m)
    return [(m["params"]["uri"], m["params"].get("version")) for m in seen
            if m.get("method") == "textDocument/publishDiagnostics"]


def test_a_slow_document_does_not_hold_up_the_others(fresh_server):
    """The checker takes seconds over a long document; a small one opened after it gets its diagnostics
    first, and a hover on it is answered meanwhile."""
    c = fresh_server
    slow, small = (ROOT / "examples" / "lsp_slow.attn").as_uri(), (ROOT / "examples" / "lsp_small.attn").as_uri()
    _open(c, slow, 1, _slow_document())
    time.sleep(0.2)  # its check is under way
    t0 = time.monotonic()
    _open(c, small, 1, PROGRAM)
    assert c.diagnostics_for(small, 1) is not None
    hover = c.request("textDocument/hover", {"textDocument": {"uri": small}, "position": {"line": 9, "character": 4}})
    assert hover is not None
    assert (slow, 1) not in _published(c), f"the small document waited {time.monotonic() - t0:.1f} s"


def test_a_newer_edit_cancels_the_check_of_the_older_version(fresh_server):
    """Version 1 takes seconds to check; version 2 arrives at once: its diagnostics are published, version 1's
    never are, and the server stops working on it (it uses no CPU once version 2 is published)."""
    c = fresh_server
    uri = (ROOT / "examples" / "lsp_edited.attn").as_uri()
    _open(c, uri, 1, _slow_document())
    time.sleep(0.3)
    c.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                        "contentChanges": [{"text": BROKEN}]})
    assert [d["code"] for d in c.diagnostics_for(uri, 2)] == ["E0310"]
    before = _cpu_seconds(c.proc.pid)
    time.sleep(1.0)
    assert _cpu_seconds(c.proc.pid) - before < 0.3
    assert (uri, 1) not in _published(c)
