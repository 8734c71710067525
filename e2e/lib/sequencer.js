// Test files run in name order, and the end-to-end ones that kill components (recovery,
// connector-ops) last, so a disruption never overlaps a test that expects a steady pipeline.
const Sequencer = require('@jest/test-sequencer').default;

class ByNameDisruptiveLast extends Sequencer {
  sort(tests) {
    const rank = (t) => (/recovery|connector-ops/.test(t.path) ? 1 : 0);
    return [...tests].sort((a, b) => rank(a) - rank(b) || a.path.localeCompare(b.path));
  }
}

module.exports = ByNameDisruptiveLast;
