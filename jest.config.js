// Three tiers: `unit` (pure logic, no services), `integration` (writer, merge and DDL against the
// stack's warehouse PostgreSQL, in scratch databases) and `e2e` (the real stack, started by `make up`).
const tsJest = ['ts-jest', { tsconfig: { ...require('./tsconfig.json').compilerOptions, sourceMap: false } }];
module.exports = {
  // End-to-end tests wait (with bounds) for a real pipeline; unit tests finish far sooner.
  testTimeout: 180000,
  testSequencer: '<rootDir>/e2e/lib/sequencer.js',
  projects: [
    {
      displayName: 'unit',
      roots: ['<rootDir>/processor', '<rootDir>/seed', '<rootDir>/bench'],
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/processor/test/*.test.ts', '<rootDir>/seed/test/**/*.test.ts', '<rootDir>/bench/test/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      roots: ['<rootDir>/processor/test/integration'],
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/processor/test/integration/**/*.test.ts'],
    },
    {
      displayName: 'e2e',
      roots: ['<rootDir>/e2e'],
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/e2e/**/*.test.ts'],
    },
  ],
};
