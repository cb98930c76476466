/**
 * Unit specs sit beside the source; integration and e2e tests under test/; deploy specs
 * (docker-compose.yml, docker/, k8s/: files only, no infrastructure) under test/deploy/; the
 * fleet in containers (the images, docker-compose.yml's services) under test/containers/, where a
 * Docker engine answers.
 */
const { spawnSync } = require('node:child_process');

// The client's sources import each other as './x.js' (they are built as ES modules too).
const moduleNameMapper = { '^@kernelfleet/(.*)$': '<rootDir>/libs/$1/src', '^(\\.{1,2}/.*)\\.js$': '$1' };
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] };
const common = { rootDir: __dirname, testEnvironment: 'node', moduleNameMapper, transform };
const CLUSTER_E2E = [
  'smoke', 'ordering', 'streaming', 'failover', 'cancel-and-sessions', 'owners', 'idempotency', 'quotas', 'tenants', 'large-output', 'disposal',
];

const dockerEngine = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { stdio: 'ignore', timeout: 10000 }).status === 0;
if (!dockerEngine) console.log('containers: no Docker engine answers `docker version`: the container tests (test/containers) do not run here');
const containers = {
  ...common,
  displayName: 'containers',
  testMatch: ['<rootDir>/test/containers/**/*.container-spec.ts'],
  globalSetup: '<rootDir>/test/containers/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/containers/support/global-teardown.ts',
};

module.exports = {
  // Per-project testTimeout is ignored by Jest; this one applies to every project.
  testTimeout: 120000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs}/**/*.spec.ts'] },
    { ...common, displayName: 'deploy', testMatch: ['<rootDir>/test/deploy/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.int-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
    {
      // The same e2e files again on a three-master Redis Cluster (docs/operations.md, *Redis
      // Cluster*): the ones that cover every script, queue and channel, to keep CI time down.
      // The whole suite: KF_TEST_REDIS_CLUSTER=1 npx jest --selectProjects e2e
      ...common,
      displayName: 'e2e-cluster',
      testMatch: [`<rootDir>/test/e2e/{${CLUSTER_E2E.join(',')}}.e2e-spec.ts`],
      globalSetup: '<rootDir>/test/support/cluster-global-setup.ts',
      globalTeardown: '<rootDir>/test/support/cluster-global-teardown.ts',
      setupFiles: ['<rootDir>/test/support/use-redis-cluster.ts'],
    },
    ...(dockerEngine ? [containers] : []),
  ],
};
