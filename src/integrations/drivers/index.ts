/**
 * The explicit registry of code-backed probe drivers, the ones an
 * IntegrationType names with `probe.driver`. Registration is one line per
 * driver, in this file only, so the set of protocols atoll speaks is visible
 * in one place; registering a name twice is a programming error and throws.
 */
import type { ProbeDriver } from '../probe-types.js';
import { GcpServiceAccountDriver } from './gcp-service-account.js';
import { MysqlDriver } from './mysql.js';
import { PostgresqlDriver } from './postgresql.js';
import { PrometheusDriver } from './prometheus.js';
import { RedisDriver } from './redis.js';
import { S3Driver } from './s3.js';

export const ERROR_DUPLICATE_DRIVER = 'a probe driver with this name is already registered';

/** A name → driver map that refuses duplicates. */
export class DriverRegistry {
  private readonly drivers = new Map<string, ProbeDriver>();

  register(driver: ProbeDriver): void {
    if (this.drivers.has(driver.name)) throw new Error(`${ERROR_DUPLICATE_DRIVER}: ${driver.name}`);
    this.drivers.set(driver.name, driver);
  }

  get(name: string): ProbeDriver | undefined {
    return this.drivers.get(name);
  }

  names(): string[] {
    return [...this.drivers.keys()].sort();
  }
}

/** The drivers atoll ships. */
export const drivers = new DriverRegistry();

function register(driver: ProbeDriver): void {
  drivers.register(driver);
}

// One line per driver; a new driver adds its import above and its line here.
register(new PostgresqlDriver());
register(new MysqlDriver());
register(new RedisDriver());
register(new S3Driver());
register(new PrometheusDriver());
register(new GcpServiceAccountDriver());

/** The registered driver called `name`, if any. */
export function getDriver(name: string): ProbeDriver | undefined {
  return drivers.get(name);
}
