// Starts the attnlang language server (`attn lsp`) for .attn files.
// The grammar, snippets and language configuration need no code; this file
// only connects VS Code to the server named by the `attn.server.path` setting.
"use strict";

const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("attn").get("server.path", "attn");
  if (!command) {
    return undefined;
  }
  const server = { command, args: ["lsp"] };
  client = new LanguageClient("attn", "attnlang", server, {
    documentSelector: [{ scheme: "file", language: "attn" }],
  });
  context.subscriptions.push(client);
  return client.start().catch((err) => {
    vscode.window.showWarningMessage(
      `attnlang: could not start \`${command} lsp\` (${err.message}); ` +
        "set attn.server.path to the attn command.",
    );
  });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
