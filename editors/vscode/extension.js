// The specc language client: starts `specc lsp` (setting specc.server.command) over stdio for .net files.
// Highlighting needs none of this: the grammar in syntaxes/ works on its own.
const { workspace, window } = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = workspace.getConfiguration("specc").get("server.command", ["specc", "lsp"]);
  if (!command) {
    return undefined; // the server is turned off
  }
  // no `transport` field: with TransportKind.stdio the client would append `--stdio` (which specc accepts anyway)
  const server = { command, args };
  client = new LanguageClient(
    "specc",
    "specc language server",
    { run: server, debug: server },
    { documentSelector: [{ language: "specc" }] },
  );
  return client.start().catch((err) => {
    window.showWarningMessage(
      `specc: could not start \`${[command, ...args].join(" ")}\` (${err}); ` +
        "install it with `pip install 'specc[lsp]'` or set specc.server.command",
    );
  });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
