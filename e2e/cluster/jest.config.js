// make test-cluster: the cluster tier, apart from make test (own file suffix, own config): it brings
// up a cluster of its own (3 brokers, 2 Connect workers, 2 processors), runs make chaos, stops it;
// and a secured single node of its own for the REST authentication checks (rest-auth.cluster-test.ts).
const path = require('path');
const root = path.resolve(__dirname, '../..');
const tsJest = ['ts-jest', { tsconfig: { ...require(path.join(root, 'tsconfig.json')).compilerOptions, sourceMap: false } }];
module.exports = {
  rootDir: root,
  // A cold cluster start on a small machine takes minutes, and the chaos run tens of minutes.
  testTimeout: 60 * 60 * 1000,
  // Name order: chaos (fresh cluster, make down at its end), then kafka-security (brings the same
  // secured cluster up again, make down at its end).
  testSequencer: '<rootDir>/e2e/lib/sequencer.js',
  projects: [
    {
      displayName: 'cluster',
      rootDir: root,
      roots: ['<rootDir>/e2e/cluster'],
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/e2e/cluster/**/*.cluster-test.ts'],
    },
  ],
};
