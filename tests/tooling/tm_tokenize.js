// Tokenize files with the attn TextMate grammar, as VS Code would.
//
// usage: node tm_tokenize.js NODE_MODULES GRAMMAR.json FILE...
// NODE_MODULES must hold vscode-textmate and vscode-oniguruma.
// Prints JSON: {FILE: [[{start, end, scopes}, ...] for each line]}, where
// start and end are UTF-16 offsets into the line, as VS Code counts them.
"use strict";

const fs = require("fs");
const path = require("path");

async function main() {
  const [nodeModules, grammarPath, ...files] = process.argv.slice(2);
  const vsctm = require(path.join(nodeModules, "vscode-textmate"));
  const onig = require(path.join(nodeModules, "vscode-oniguruma"));

  const wasm = fs.readFileSync(path.join(nodeModules, "vscode-oniguruma", "release", "onig.wasm"));
  await onig.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new onig.OnigScanner(patterns),
      createOnigString: (text) => new onig.OnigString(text),
    }),
    loadGrammar: async (scopeName) =>
      scopeName === "source.attn"
        ? vsctm.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"), grammarPath)
        : null,
  });
  const grammar = await registry.loadGrammar("source.attn");

  const result = {};
  for (const file of files) {
    let stack = vsctm.INITIAL;
    result[file] = fs.readFileSync(file, "utf8").split(/\r?\n/).map((line) => {
      const tokenized = grammar.tokenizeLine(line, stack);
      stack = tokenized.ruleStack;
      return tokenized.tokens.map((t) => ({ start: t.startIndex, end: t.endIndex, scopes: t.scopes }));
    });
  }
  process.stdout.write(JSON.stringify(result));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
