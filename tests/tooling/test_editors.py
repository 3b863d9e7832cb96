"""The editor grammars in editors/ agree with the vocabulary and the grammar.

Word lists are read out of each editor file and compared with
attnlang.syntax.vocab. Where the editor itself is installed (vim, emacs, node
with vscode-textmate), every example is highlighted by it and each keyword,
quantity and annotation that the real grammar (attn.lark) finds must get the
right highlighting group; those tests skip when the tool is absent.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("attnlang") is None:  # not installed yet: use the checkout
    sys.path.insert(0, str(ROOT))
vocab = importlib.import_module("attnlang.syntax.vocab")
parser = importlib.import_module("attnlang.syntax.parser")

HERE = Path(__file__).resolve().parent
EDITORS = ROOT / "editors"
VIM = EDITORS / "vim"
TM_GRAMMAR = EDITORS / "vscode" / "syntaxes" / "attn.tmLanguage.json"
EMACS_MODE = EDITORS / "emacs" / "attn-mode.el"
PROGRAMS = sorted([*ROOT.glob("examples/*.attn"), *ROOT.glob("attnlang/stdlib/**/*.attn")])
PROGRAM_IDS = [str(p.relative_to(ROOT)) for p in PROGRAMS]

KEYWORDS = set(vocab.KEYWORDS)
# `where` is a keyword and a builtin; editors may list it with the keywords only.
PLAIN_BUILTINS = set(vocab.BUILTINS) - KEYWORDS


# ------------------------------------------------------------- the real tokens
def grammar_tokens(source: str) -> list[tuple[str, str, int, int]]:
    """(kind, text, line, column) of the keywords, quantities and annotations
    in ``source`` as the grammar's lexer sees them; line and column 1-based."""
    found = []
    for tok in parser.grammar().lex(source):
        if tok.value in KEYWORDS and tok.type != "NAME":
            found.append(("keyword", str(tok), tok.line, tok.column))
        elif tok.type in ("QUANTITY", "ANNOTATION"):
            found.append((tok.type.lower(), str(tok), tok.line, tok.column))
    return found


def expected_tokens(path: Path) -> list[tuple[str, str, int, int]]:
    found = grammar_tokens(path.read_text(encoding="utf-8"))
    assert any(kind == "keyword" for kind, *_ in found), f"no keywords in {path}"
    return found


# ------------------------------------------------------------------------ vim
VIM_KEYWORD_GROUPS = {
    "attnDeclaration", "attnStatement", "attnRepeat", "attnConditional", "attnLogical",
}  # fmt: skip


def vim_keywords() -> dict[str, set[str]]:
    """Words of each `syn keyword` group in the Vim syntax file."""
    groups: dict[str, set[str]] = {}
    for line in (VIM / "syntax" / "attn.vim").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts[:2] == ["syn", "keyword"]:
            words = {w for w in parts[3:] if w != "contained" and "=" not in w}
            groups.setdefault(parts[2], set()).update(words)
    return groups


def test_vim_syntax_lists_the_vocabulary():
    groups = vim_keywords()
    reserved = set().union(*(words for group, words in groups.items() if group in VIM_KEYWORD_GROUPS))
    assert reserved == KEYWORDS
    assert PLAIN_BUILTINS <= groups["attnBuiltin"] <= set(vocab.BUILTINS)
    assert groups["attnConstant"] == set(vocab.CONSTANTS)
    assert groups["attnType"] == set(vocab.DTYPES)
    assert groups["attnUnitKind"] == set(vocab.UNIT_KINDS)


def test_vim_syntax_conventions():
    text = (VIM / "syntax" / "attn.vim").read_text(encoding="utf-8")
    assert "if exists('b:current_syntax')" in text
    assert "let b:current_syntax = 'attn'" in text
    defined = set(re.findall(r"^syn\s+(?:keyword|match|region|cluster)\s+(\w+)", text, re.M))
    linked = set(re.findall(r"^hi def link\s+(\w+)\s+\w+", text, re.M))
    assert defined, "no syntax groups found"
    assert all(group.startswith("attn") for group in defined | linked)
    assert defined == linked, "every group gets a `hi def link`, and only those"
    for word in vocab.ANNOTATIONS:
        assert word in text
    assert "autocmd BufRead,BufNewFile *.attn setfiletype attn" in (VIM / "ftdetect" / "attn.vim").read_text(
        encoding="utf-8"
    )


def run_vim(path: Path, *commands: str, script: Path | None = None, out: Path | None = None):
    args = ["vim", "-u", "NONE", "-i", "NONE", "-N", "-es", "--not-a-term"]
    args += ["--cmd", f"set rtp^={VIM}", "--cmd", "filetype plugin indent on"]
    args += ["--cmd", "syntax on"]
    for command in commands:
        args += ["-c", command]
    if script is not None:
        args += ["-S", str(script)]
    env = {**os.environ, "ATTN_SYN_OUT": str(out)} if out else None
    subprocess.run([*args, str(path)], check=True, timeout=60, capture_output=True, env=env)


needs_vim = pytest.mark.skipif(shutil.which("vim") is None, reason="vim is not installed")


@needs_vim
@pytest.mark.parametrize("path", PROGRAMS, ids=PROGRAM_IDS)
def test_vim_highlights_every_keyword_and_quantity(path: Path, tmp_path: Path):
    out = tmp_path / "groups.txt"
    run_vim(path, script=HERE / "vim_syntax_dump.vim", out=out)
    *rows, settings = out.read_text(encoding="utf-8").splitlines()
    assert settings == "filetype=attn syntax=attn sw=2 et=1 cms=# %s"
    lines = path.read_text(encoding="utf-8").split("\n")
    want = {"quantity": "attnQuantity", "annotation": "attnAnnotation"}
    for kind, text, line, column in expected_tokens(path):
        byte = len(lines[line - 1][: column - 1].encode("utf-8"))
        group = rows[line - 1].split(" ")[byte]
        if kind == "keyword":
            assert group in VIM_KEYWORD_GROUPS, f"{path.name}:{line}:{column} {text!r}"
        else:
            assert group == want[kind], f"{path.name}:{line}:{column} {text!r}"


# -------------------------------------------------------------- indentation
UNINDENTED = """\
hardware h {
memory m { capacity 1 KiB }
unit u : vector {
lanes 4
op exp { cycles 4 }
}
}
kernel k(X: f32[N]) -> (Y: f32[N])
on h
spec Y = X
{
for i in 0 .. N by 4 @unroll {
x = load X[i : i+4] -> m  # a {brace} in a comment
y = full(
[4],
0)
if True {
store x -> Y[i : i+4]
} else {
discard x
}
}
}
"""

INDENTED = """\
hardware h {
  memory m { capacity 1 KiB }
  unit u : vector {
    lanes 4
    op exp { cycles 4 }
  }
}
kernel k(X: f32[N]) -> (Y: f32[N])
  on h
  spec Y = X
{
  for i in 0 .. N by 4 @unroll {
    x = load X[i : i+4] -> m  # a {brace} in a comment
    y = full(
      [4],
      0)
    if True {
      store x -> Y[i : i+4]
    } else {
      discard x
    }
  }
}
"""


@needs_vim
def test_vim_indents_by_braces(tmp_path: Path):
    path = tmp_path / "indent.attn"
    path.write_text(UNINDENTED, encoding="utf-8")
    run_vim(path, "normal! gg=G", "write", "qall!")
    assert path.read_text(encoding="utf-8") == INDENTED


# ---------------------------------------------------------------------- emacs
def emacs_list(name: str) -> set[str]:
    text = EMACS_MODE.read_text(encoding="utf-8")
    match = re.search(rf"\(defconst {name}\s+'\(([^)]*)\)", text)
    assert match, f"(defconst {name} '(...)) not found in attn-mode.el"
    return set(re.findall(r'"([^"]+)"', match.group(1)))


def test_emacs_mode_lists_the_vocabulary():
    assert emacs_list("attn-keywords") == KEYWORDS
    assert PLAIN_BUILTINS <= emacs_list("attn-builtins") <= set(vocab.BUILTINS)
    assert emacs_list("attn-constants") == set(vocab.CONSTANTS)
    assert emacs_list("attn-types") == set(vocab.DTYPES) | set(vocab.UNIT_KINDS)
    assert emacs_list("attn-annotations") == set(vocab.ANNOTATIONS)
    assert emacs_list("attn-unit-prefixes") == set(vocab.PREFIXES)
    assert emacs_list("attn-measure-units") == set(vocab.MEASURE_UNITS)
    text = EMACS_MODE.read_text(encoding="utf-8")
    assert "(define-derived-mode attn-mode prog-mode" in text
    assert """(add-to-list 'auto-mode-alist '("\\\\.attn\\\\'" . attn-mode))""" in text


def run_emacs(*args: str) -> None:
    command = ["emacs", "--batch", "-Q", "-l", str(EMACS_MODE), *args]
    subprocess.run(command, check=True, timeout=120, capture_output=True)


needs_emacs = pytest.mark.skipif(shutil.which("emacs") is None, reason="emacs is not installed")


@needs_emacs
@pytest.mark.parametrize("path", PROGRAMS, ids=PROGRAM_IDS)
def test_emacs_highlights_every_keyword_and_quantity(path: Path, tmp_path: Path):
    out = tmp_path / "faces.txt"
    run_emacs("-l", str(HERE / "emacs_face_dump.el"), str(path), str(out))
    *rows, mode = out.read_text(encoding="utf-8").split("\n")
    assert mode == "mode=attn-mode"
    want = {
        "keyword": "font-lock-keyword-face",
        "quantity": "attn-quantity-face",
        "annotation": "font-lock-preprocessor-face",
    }
    for kind, text, line, column in expected_tokens(path):
        face = rows[line - 1].split(" ")[column - 1]
        assert face == want[kind], f"{path.name}:{line}:{column} {text!r}: {face}"


@needs_emacs
def test_emacs_indents_by_braces(tmp_path: Path):
    path = tmp_path / "indent.attn"
    path.write_text(UNINDENTED, encoding="utf-8")
    run_emacs(str(path), "--eval", "(progn (indent-region (point-min) (point-max)) (save-buffer))")
    assert path.read_text(encoding="utf-8") == INDENTED


@needs_emacs
def test_emacs_mode_byte_compiles_cleanly(tmp_path: Path):
    copy = tmp_path / "attn-mode.el"
    shutil.copy(EMACS_MODE, copy)
    command = ["emacs", "--batch", "-Q", "--eval", "(setq byte-compile-error-on-warn t)"]
    result = subprocess.run(
        [*command, "-f", "batch-byte-compile", str(copy)],
        timeout=120, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- TextMate
def tm_grammar() -> dict:
    return json.loads(TM_GRAMMAR.read_text(encoding="utf-8"))


def scope_names(node: object) -> list[str]:
    """Every `name` and `contentName` in the rules of a TextMate grammar."""
    names = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("name", "contentName") and isinstance(value, str):
                names.append(value)
            else:
                names += scope_names(value)
    elif isinstance(node, list):
        for item in node:
            names += scope_names(item)
    return names


def tm_words(rule: dict) -> set[str]:
    r"""Words of the `\b(?:a|b|c)\b` matches under ``rule``."""
    words = set()
    for pattern in rule.get("patterns", [rule]):
        match = re.fullmatch(r"\\b\(\?:([A-Za-z0-9_|]+)\)\\b", pattern["match"])
        assert match, f"not a word list: {pattern['match']}"
        words |= set(match.group(1).split("|"))
    return words


def test_textmate_grammar_structure():
    grammar = tm_grammar()
    assert grammar["scopeName"] == "source.attn"
    repository = grammar["repository"]
    for pattern in grammar["patterns"]:
        assert set(pattern) == {"include"}, f"top-level pattern is not an include: {pattern}"
        assert pattern["include"].startswith("#")
        assert pattern["include"][1:] in repository
    names = scope_names(grammar["patterns"]) + scope_names(repository)
    assert names
    assert [n for n in names if not n.endswith(".attn")] == []


def test_textmate_grammar_lists_the_vocabulary():
    repository = tm_grammar()["repository"]
    keyword_rules = repository["keyword"]["patterns"]
    assert all(rule["name"].startswith("keyword.") for rule in keyword_rules)
    assert tm_words(repository["keyword"]) == KEYWORDS
    assert PLAIN_BUILTINS <= tm_words(repository["builtin"]) <= set(vocab.BUILTINS)
    assert tm_words(repository["constant"]) == set(vocab.CONSTANTS)
    assert tm_words(repository["type"]) == set(vocab.DTYPES) | set(vocab.UNIT_KINDS)
    quantity = repository["quantity"]["match"]
    for word in (*vocab.PREFIXES, *vocab.MEASURE_UNITS):
        assert re.search(rf"[(|:]{word}[|)]", quantity), f"unit part {word!r} missing"
    for word in vocab.ANNOTATIONS:
        assert word in repository["annotation"]["match"]


def node_modules() -> Path | None:
    """Where vscode-textmate and vscode-oniguruma are installed, if anywhere:
    $ATTN_TM_NODE_MODULES, else editors/vscode/node_modules (`npm install`)."""
    candidates = [os.environ.get("ATTN_TM_NODE_MODULES"), EDITORS / "vscode" / "node_modules"]
    for candidate in candidates:
        if candidate and all(
            (Path(candidate) / package / "package.json").is_file()
            for package in ("vscode-textmate", "vscode-oniguruma")
        ):
            return Path(candidate)
    return None


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.skipif(
    node_modules() is None,
    reason="vscode-textmate and vscode-oniguruma are not installed "
    "(run `npm install` in editors/vscode, or set ATTN_TM_NODE_MODULES)",
)
def test_textmate_grammar_scopes_every_keyword_and_quantity():
    result = subprocess.run(
        ["node", str(HERE / "tm_tokenize.js"), str(node_modules()), str(TM_GRAMMAR)]
        + [str(p) for p in PROGRAMS],
        check=True, timeout=120, capture_output=True, text=True,
    )  # fmt: skip
    tokenized = json.loads(result.stdout)
    want = {
        "keyword": "keyword.",
        "quantity": "constant.numeric.attn",
        "annotation": "meta.annotation.attn",
    }
    for path in PROGRAMS:
        lines = path.read_text(encoding="utf-8").split("\n")
        line_tokens = tokenized[str(path)]
        for kind, text, line, column in expected_tokens(path):
            # VS Code counts offsets in UTF-16 code units.
            offset = len(lines[line - 1][: column - 1].encode("utf-16-le")) // 2
            scopes = next(t["scopes"] for t in line_tokens[line - 1] if t["start"] <= offset < t["end"])
            where = f"{path.name}:{line}:{column} {text!r}: {scopes}"
            assert any(s.startswith(want[kind]) for s in scopes), where


# ----------------------------------------------------------------- snippets
def expand(body: list[str]) -> str:
    """A snippet's text with every placeholder at its default."""
    text = "\n".join(body)
    text = re.sub(r"\$\{\d+:([^}]*)\}", r"\1", text)
    return re.sub(r"\$\d+", "", text)


def test_vscode_snippets_parse():
    snippets = json.loads((EDITORS / "vscode" / "snippets" / "attn.json").read_text())
    prefixes = {snippet["prefix"] for snippet in snippets.values()}
    assert {"hardware", "kernel", "for", "process"} <= prefixes
    for name, snippet in snippets.items():
        text = expand(snippet["body"])
        if snippet["prefix"] not in ("hardware", "kernel"):
            text = f"kernel k() -> () {{\n{text}\n}}"
        _, diagnostics = parser.parse(text, f"<snippet {name}>")
        assert not diagnostics, f"snippet {name!r} does not parse:\n{text}\n{diagnostics}"


def test_vscode_package_contributes_the_language():
    package = json.loads((EDITORS / "vscode" / "package.json").read_text())
    contributes = package["contributes"]
    (language,) = contributes["languages"]
    assert language["id"] == "attn" and ".attn" in language["extensions"]
    (grammar,) = contributes["grammars"]
    assert grammar["scopeName"] == "source.attn"
    assert (EDITORS / "vscode" / grammar["path"]).resolve() == TM_GRAMMAR
    setting = contributes["configuration"]["properties"]["attn.server.path"]
    assert setting["default"] == "attn" and "attn lsp" in setting["markdownDescription"]
    config = json.loads((EDITORS / "vscode" / "language-configuration.json").read_text())
    assert config["comments"]["lineComment"] == "#"


def test_the_vscode_package_is_complete():
    vscode = EDITORS / "vscode"
    package = json.loads((vscode / "package.json").read_text())
    assert package["license"] == "MIT"
    assert "MIT License" in (vscode / "LICENSE").read_text()
    ignored = [line for line in (vscode / ".vscodeignore").read_text().splitlines() if not line.startswith("#")]
    # The grammar test's tools stay out of the .vsix; the language client it needs at run time stays in.
    left_out = {line.split("/")[1] for line in ignored if line.startswith("node_modules/")}
    assert set(package["devDependencies"]) <= left_out
    assert not any("vscode-languageclient" in line for line in ignored)
    # vsce stops to ask about a missing `repository` unless told not to: the README's command packages
    # without a question either way
    package_commands = [line for line in (vscode / "README.md").read_text().splitlines() if "vsce package" in line]
    assert package_commands
    if "repository" not in package:
        assert all("--allow-missing-repository" in line for line in package_commands)
    else:
        assert package["repository"]["directory"] == "editors/vscode" and package["repository"]["url"]
