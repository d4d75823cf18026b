import { describe, expect, it } from 'vitest';
import { planFaults } from './faults.js';
import { Random } from './random.js';
import { chaosSize, SIZES } from './sizes.js';

describe('chaos plan', () => {
  it('is the same for the same seed (a printed seed replays the run) and differs for another', () => {
    const a = planFaults(SIZES.ci, new Random(1234).fork('faults'));
    const b = planFaults(SIZES.ci, new Random(1234).fork('faults'));
    const c = planFaults(SIZES.ci, new Random(1235).fork('faults'));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it("holds exactly the size's faults, in order, inside the window, with the KMS outage in the middle", () => {
    for (const size of Object.values(SIZES)) {
      const plan = planFaults(size, new Random(7));
      const count = (kind: string) => plan.faults.filter((f) => f.kind === kind).length;
      expect([count('kill'), count('apiserver'), count('etcd'), count('network')]).toEqual([
        size.kills,
        size.apiserverRestarts,
        size.etcdRestarts,
        size.networkFaults,
      ]);
      expect(plan.faults.map((f) => f.at)).toEqual([...plan.faults.map((f) => f.at)].sort((x, y) => x - y));
      expect(plan.faults.every((f) => f.at >= 0 && f.at < size.chaosSeconds * 1000)).toBe(true);
      expect(plan.kmsOutage.ms).toBe(size.kmsOutageSeconds * 1000);
      expect(plan.kmsOutage.at + plan.kmsOutage.ms / 2).toBe(size.chaosSeconds * 500);
    }
  });

  it('puts no network fault on the KMS proxy while the KMS is frozen (Toxiproxy cannot close links to it)', () => {
    for (let seed = 0; seed < 200; seed++) {
      const { faults, kmsOutage } = planFaults(SIZES.full, new Random(seed).fork('faults'));
      const onKms = faults.filter((f) => f.kind === 'network' && f.proxy === 'kms');
      expect(onKms.length).toBeGreaterThan(0);
      for (const f of onKms)
        if (f.kind === 'network')
          expect(f.at + f.ms <= kmsOutage.at || f.at >= kmsOutage.at + kmsOutage.ms + 5_000).toBe(true);
    }
  });

  it("draws independent streams per consumer, so one consumer's extra draws do not shift another's", () => {
    const r1 = new Random(99);
    const r2 = new Random(99);
    r2.fork('workload').next();
    expect(r1.fork('faults').next()).toBe(r2.fork('faults').next());
    expect(new Random(99).fork('faults').next()).not.toBe(new Random(99).fork('workload').next());
  });

  it('refuses a seed that is not a non-negative integer, naming the variable', () => {
    expect(() => Random.fromEnv({ ATOLL_CHAOS_SEED: 'abc' })).toThrow(
      /ATOLL_CHAOS_SEED must be a non-negative integer/,
    );
    expect(Random.fromEnv({ ATOLL_CHAOS_SEED: '42' }).seed).toBe(42);
  });

  it('runs the CI size unless ATOLL_CHAOS names another, and refuses an unknown size', () => {
    expect(chaosSize({}).name).toBe('ci');
    expect(chaosSize({ ATOLL_CHAOS: 'full' }).kills).toBe(50);
    expect(() => chaosSize({ ATOLL_CHAOS: 'huge' })).toThrow(/ATOLL_CHAOS must be ci \(default\) or full/);
  });
});
