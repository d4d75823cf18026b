/**
 * The explicit registry of code-backed probe drivers, the ones an
 * IntegrationType names with `probe.driver`. Registration is one line per
 * driver, in this file only, so the set of protocols atoll speaks is visible
 * in one place; registering a name twice is a programming error and throws.
 */
import { loadOnce } from '../../util/load-once.js';
import type { ProbeContext, ProbeDriver, ProbeOutcome } from '../probe-types.js';

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

/**
 * A driver whose module loads on its first probe. The client libraries behind
 * them (pg, mysql2, @redis/client, the AWS SDK) cost 15-20 MiB of memory each
 * once imported, and a cluster probes few of them, if any (ADR 0035).
 */
class LazyDriver implements ProbeDriver {
  readonly #driver: () => Promise<ProbeDriver>;

  constructor(
    readonly name: string,
    load: () => Promise<ProbeDriver>,
  ) {
    this.#driver = loadOnce(async () => {
      const driver = await load();
      if (driver.name !== name) throw new Error(`driver ${name} loaded as ${driver.name}`);
      return driver;
    });
  }

  async probe(ctx: ProbeContext): Promise<ProbeOutcome> {
    return (await this.#driver()).probe(ctx);
  }
}

function lazy(name: string, load: () => Promise<ProbeDriver>): void {
  register(new LazyDriver(name, load));
}

// One line per driver.
lazy('postgresql', async () => new (await import('./postgresql.js')).PostgresqlDriver());
lazy('mysql', async () => new (await import('./mysql.js')).MysqlDriver());
lazy('redis', async () => new (await import('./redis.js')).RedisDriver());
lazy('s3', async () => new (await import('./s3.js')).S3Driver());
lazy('prometheus', async () => new (await import('./prometheus.js')).PrometheusDriver());
lazy('gcp-service-account', async () => new (await import('./gcp-service-account.js')).GcpServiceAccountDriver());

/** The registered driver called `name`, if any. */
export function getDriver(name: string): ProbeDriver | undefined {
  return drivers.get(name);
}
