"""`attn lsp`: the language server, over stdio (pygls; install with `pip install 'attnlang[lsp]'`).

Diagnostics on open, change and save, worked out off the server's loop (a
newer edit cancels the older check: checks.py); hover (kind, type,
shape, dtype, memory, and the cost of the statement at the defaults); go to
definition; completion; document symbols, answered in the server's thread
pool. The answers are plain functions in features.py; this module only
connects them to pygls.
"""

from __future__ import annotations

import asyncio
import logging
import os

from ..diagnostics import UsageError

INSTALL_HINT = ("attn lsp needs the pygls package, which is not installed; install it with\n"
                "    pip install 'attnlang[lsp]'      (or: pip install 'pygls>=2')")


def main(args) -> int:
    """The `attn lsp` command: serve on stdin/stdout until the client says exit."""
    try:
        server = build_server()
    except ImportError:
        raise UsageError(_missing()) from None
    logging.basicConfig(level=logging.WARNING)
    try:
        server.start_io()
    finally:
        server.attn_costs.close()
    # The client said exit: a check or a hover-cost run still under way in a thread is abandoned, not
    # waited for (the interpreter's exit would join the cost runner's thread, for up to its wall limit).
    os._exit(0)  # (every message was flushed as it was written; stdout may be closed by now)


def _missing() -> str:
    """What to say when pygls cannot be imported: not installed, or a 1.x without pygls.lsp.server."""
    from importlib import metadata

    try:
        version = metadata.version("pygls")
    except metadata.PackageNotFoundError:
        return INSTALL_HINT
    return f"attn lsp needs pygls 2 or later, and pygls {version} is installed: pip install -U 'pygls>=2'"


def build_server():
    """The pygls server with every feature registered (ImportError without pygls)."""
    from lsprotocol import types as T
    from pygls.lsp.server import LanguageServer

    from .. import __version__
    from . import features as F
    from .analysis import analyze, uri_to_path
    from .checks import DocumentChecks
    from .costs import CostRunner

    server = LanguageServer("attn-lsp", __version__)
    server.attn_costs = CostRunner()
    severity = {"error": T.DiagnosticSeverity.Error, "warning": T.DiagnosticSeverity.Warning,
                "note": T.DiagnosticSeverity.Information}
    kinds = {"keyword": T.CompletionItemKind.Keyword, "function": T.CompletionItemKind.Function,
             "constant": T.CompletionItemKind.Constant, "type": T.CompletionItemKind.TypeParameter,
             "variable": T.CompletionItemKind.Variable, "field": T.CompletionItemKind.Field,
             "module": T.CompletionItemKind.Module, "class": T.CompletionItemKind.Class,
             "struct": T.CompletionItemKind.Struct, "event": T.CompletionItemKind.Event}
    symbol_kinds = {"class": T.SymbolKind.Class, "function": T.SymbolKind.Function,
                    "constant": T.SymbolKind.Constant, "variable": T.SymbolKind.Variable,
                    "struct": T.SymbolKind.Struct, "module": T.SymbolKind.Module, "field": T.SymbolKind.Field,
                    "event": T.SymbolKind.Event}

    def rng(r) -> T.Range:
        return T.Range(T.Position(r[0], r[1]), T.Position(r[2], r[3]))

    def document(uri: str):
        doc = server.workspace.get_text_document(uri)
        return doc, doc.source, uri_to_path(uri)

    def failed(exc: BaseException) -> list:
        return [F.LspDiagnostic((0, 0, 0, 0), "error", "internal",
                                f"internal error in attn's checker: {type(exc).__name__}: {exc} "
                                "(a bug in attnlang; please report it)")]

    def publish(uri: str, version: int | None, found: list) -> None:
        diags = [T.Diagnostic(rng(d.range), d.message, severity=severity.get(d.severity), code=d.code,
                              source="attn") for d in found]
        server.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri, diags, version=version))

    def prefetch_costs(text: str, path: str) -> None:
        a = analyze(text, path)
        for k in (a.module.kernels if a.module else ())[:4]:
            server.attn_costs.costs(a, k, wait_s=0)

    def on_loop(f) -> None:
        """Run f on the server's loop (the thread that writes to the client), from a check's thread."""
        loop.call_soon_threadsafe(f)

    loop = None
    server.attn_checks = checks = DocumentChecks(F.diagnostics, publish, failed, on_loop)

    def check(uri: str, prefetch: bool = False) -> None:
        """Check the document's current version off the loop (checks.py)."""
        nonlocal loop
        loop = loop or asyncio.get_running_loop()
        doc, text, path = document(uri)
        checks.submit(uri, doc.version, text, path, prefetch_costs if prefetch else None)

    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls, params: T.DidOpenTextDocumentParams):
        check(params.text_document.uri, prefetch=True)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls, params: T.DidChangeTextDocumentParams):
        check(params.text_document.uri)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls, params: T.DidSaveTextDocumentParams):
        check(params.text_document.uri, prefetch=True)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls, params: T.DidCloseTextDocumentParams):
        checks.cancel(params.text_document.uri)
        server.text_document_publish_diagnostics(T.PublishDiagnosticsParams(params.text_document.uri, []))

    # Requests answer from a document's analysis, which a slow document takes a while to make: in the
    # server's thread pool, not on the loop, so they hold up nothing else either.
    @server.feature(T.TEXT_DOCUMENT_HOVER)
    @server.thread()
    def hover(ls, params: T.HoverParams):
        _, text, path = document(params.text_document.uri)
        h = F.hover(text, path, params.position.line, params.position.character, costs=server.attn_costs)
        if h is None:
            return None
        return T.Hover(T.MarkupContent(T.MarkupKind.Markdown, h.markdown), range=rng(h.range))

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    @server.thread()
    def definition(ls, params: T.DefinitionParams):
        uri = params.text_document.uri
        _, text, path = document(uri)
        loc = F.definition(text, path, params.position.line, params.position.character)
        if loc is None:
            return None
        from pathlib import Path

        target = uri if loc.path == path else Path(loc.path).resolve().as_uri()
        return T.Location(target, rng(loc.range))

    @server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=["@"]))
    @server.thread()
    def completion(ls, params: T.CompletionParams):
        _, text, path = document(params.text_document.uri)
        items = F.completion(text, path, params.position.line, params.position.character)
        return T.CompletionList(is_incomplete=False, items=[
            T.CompletionItem(c.label, kind=kinds.get(c.kind), detail=c.detail) for c in items])

    @server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @server.thread()
    def document_symbol(ls, params: T.DocumentSymbolParams):
        _, text, path = document(params.text_document.uri)

        def convert(s):
            return T.DocumentSymbol(s.name, symbol_kinds.get(s.kind, T.SymbolKind.Variable), rng(s.range),
                                    rng(s.selection), detail=s.detail, children=[convert(c) for c in s.children])

        return [convert(s) for s in F.document_symbols(text, path)]

    return server
