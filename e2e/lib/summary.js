// Adds up jest's --json reports into the one closing line CI reads: "tests: N passed, N failed, N skipped".
// Each tier must have run: a missing report, a tier with no test, a skipped test or a jest
// run that failed on its own (a suite that did not compile) fails the whole.
// Usage: node summary.js TIER=REPORT.json [TIER=REPORT.json ...] [--exit TIER=CODE ...]
const fs = require('fs');

let passed = 0;
let failed = 0;
let skipped = 0;
const problems = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--exit') {
    const [tier, code] = args[++i].split('=');
    if (code !== '0') problems.push(`${tier}: jest exited with code ${code}`);
    continue;
  }
  const [tier, file] = args[i].includes('=') ? args[i].split('=') : [args[i], args[i]];
  if (!fs.existsSync(file)) {
    problems.push(`${tier}: no report (that tier did not run)`);
    failed += 1;
    continue;
  }
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests + (r.numRuntimeErrorTestSuites || 0);
  const tierSkipped = r.numPendingTests + (r.numTodoTests || 0);
  skipped += tierSkipped;
  if (r.numTotalTests === 0) problems.push(`${tier}: ran no test`);
  if (tierSkipped) problems.push(`${tier}: ${tierSkipped} test(s) skipped`);
  if (r.numRuntimeErrorTestSuites) problems.push(`${tier}: ${r.numRuntimeErrorTestSuites} suite(s) failed to run`);
}
for (const p of problems) console.log(`[test] ${p}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 || problems.length ? 1 : 0);
