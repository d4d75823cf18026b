import { configDefaults, defineConfig } from 'vitest/config';

// Three projects:
// - unit: tests beside the code (and beside the test helpers in test/support/);
//   they start no external process (no database, no emulator, no API server).
// - services: tests beside the code named *.services.test.ts, which start a
//   real server (PostgreSQL, MariaDB, Redis, Prometheus, moto) from
//   test/support/ for the code under test.
// - integration: suites in test/ sharing one real control plane started by the
//   global setup, one file at a time so a 2-core machine stays deterministic.
const SERVICES = 'src/**/*.services.test.ts';
export default defineConfig({
  test: {
    // One file at a time: the integration suites share one control plane (and restart its parts). A root-only
    // option in Vitest 3, so it holds for every project; on 2 cores Vitest runs one worker anyway.
    fileParallelism: false,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/support/**/*.test.ts'],
          exclude: [...configDefaults.exclude, SERVICES],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'services',
          include: [SERVICES],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/support/**'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          pool: 'forks',
        },
      },
    ],
  },
});
