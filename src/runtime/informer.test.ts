import { afterEach, describe, expect, it } from 'vitest';
import { capturedLogger, FakeKubeApi, reply, silentWatch, until } from '../../test/support/fake-kube-api.js';
import { Secrets } from '../kube/resources.js';
import { Informer } from './informer.js';

const secret = (name: string) => ({ metadata: { name, namespace: 'ns' }, data: {} });
/** Node timers may fire a millisecond early; lower bounds allow for it. */
const SLACK_MS = 5;

let api: FakeKubeApi | undefined;
let informer: Informer<ReturnType<typeof secret>> | undefined;
afterEach(async () => {
  await informer?.stop();
  await api?.close();
  api = informer = undefined;
});

async function started(
  opts: {
    watchTimeoutSeconds?: number;
    stallGraceMs?: number;
    restartBackoff?: { initialMs?: number; maxMs?: number };
  } = {},
) {
  api = await FakeKubeApi.start();
  const { log, lines } = capturedLogger();
  informer = new Informer(api.client(), Secrets, {
    namespace: 'ns',
    log,
    restartBackoff: { initialMs: 10, maxMs: 100 },
    ...opts,
  });
  const events: string[] = [];
  informer.on((event, obj) => events.push(`${event} ${obj.metadata?.name}`));
  return { api, informer, events, lines };
}

const lists = (api: FakeKubeApi) => api.requests.filter((r) => r.method === 'GET' && !r.watch);

describe('Informer', () => {
  it('applies its transform to each page of a list as it arrives, once per object', async () => {
    api = await FakeKubeApi.start();
    for (let i = 0; i < 1_200; i++) api.upsert(Secrets, secret(`s${i}`));
    const server = api;
    /** For each transformed object, how many list pages had been requested by then. */
    const pagesRequested: number[] = [];
    informer = new Informer(server.client(), Secrets, {
      namespace: 'ns',
      log: capturedLogger().log,
      transform: (obj) => {
        pagesRequested.push(lists(server).length);
        return { ...obj, data: { cached: 'yes' } };
      },
    });
    informer.start();
    await informer.waitForSync();
    expect(lists(server)).toHaveLength(3);
    expect(pagesRequested).toHaveLength(1_200);
    expect([pagesRequested[0], pagesRequested[499], pagesRequested[500], pagesRequested[1_199]]).toEqual([1, 1, 2, 3]);
    expect(informer.get('ns/s7')?.data).toEqual({ cached: 'yes' });
  });

  it('relists after 410 Gone mid-watch and delivers what the watch missed', async () => {
    const { api, informer, events } = await started();
    api.upsert(Secrets, secret('kept'));
    api.upsert(Secrets, secret('dropped'));
    informer.start();
    await informer.waitForSync();
    await until('a watch is open', () => api.openWatches === 1);

    // The watch cache fell behind: the stream ends with ERROR 410 and history is gone.
    api.expireWatches();
    api.remove(Secrets, 'dropped', 'ns');
    api.upsert(Secrets, secret('added'));
    api.compact();
    await until('relisted', () => informer.get('ns/added') !== undefined && informer.get('ns/dropped') === undefined);
    expect(lists(api)).toHaveLength(2);
    expect(
      informer
        .list()
        .map((s) => s.metadata?.name)
        .sort(),
    ).toEqual(['added', 'kept']);
    expect(events).toContain('delete dropped');
    await until('watching again', () => api.openWatches === 1);
  });

  it('resumes from a BOOKMARK resourceVersion: no 410 and no relist after the history it skipped is compacted', async () => {
    const { api, informer } = await started();
    informer.start();
    await informer.waitForSync();
    await until('a watch is open', () => api.openWatches === 1);
    const listedRV = api.watchRequests()[0]!.query.get('resourceVersion');

    api.bumpResourceVersion(50); // writes this watch does not select
    api.bookmark();
    const bookmarkRV = api.resourceVersion;
    api.compact();
    api.endWatches(); // the server's timeoutSeconds: a normal end
    await until('watching again', () => api.watchRequests().length === 2 && api.openWatches === 1);
    expect(api.watchRequests().map((w) => w.query.get('resourceVersion'))).toEqual([listedRV, bookmarkRV]);
    expect(lists(api)).toHaveLength(1);
    api.upsert(Secrets, secret('later'));
    await until('the resumed watch delivers', () => informer.get('ns/later') !== undefined);
  });

  it('aborts a watch that goes silent and watches again', async () => {
    const { api, informer, lines } = await started({ watchTimeoutSeconds: 1, stallGraceMs: 100 });
    api.script((r) => r.watch, silentWatch, 1);
    informer.start();
    await informer.waitForSync();
    await until(
      'the silent watch was abandoned and another is open',
      () => api.watchRequests()[0]?.abandoned === true && api.openWatches === 1,
    );
    api.upsert(Secrets, secret('after-stall'));
    await until('the new watch delivers', () => informer.get('ns/after-stall') !== undefined);
    expect(lines.some((l) => l.includes('"reason":"WatchStalled"'))).toBe(true);
    expect(lines.join('\n')).not.toContain(api.token);
  });

  it('backs off between restarts when the server ends every watch at once (no hot loop)', async () => {
    const { api, informer } = await started({ restartBackoff: { initialMs: 50, maxMs: 400 } });
    api.script(
      (r) => r.watch,
      (_req, res) => void res.end(),
      5,
    );
    informer.start();
    await until('six watches', () => api.watchRequests().length >= 6, 30_000);
    const at = api.watchRequests().map((w) => w.at);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    // Each wait is at least initial × 2^n (jitter only lengthens it).
    [50, 100, 200, 400, 400].forEach((min, i) => expect(gaps[i]).toBeGreaterThanOrEqual(min - SLACK_MS));
  });

  it('backs off between restarts when list and watch keep failing', async () => {
    const { api, informer, lines } = await started({ restartBackoff: { initialMs: 50, maxMs: 200 } });
    api.script((r) => !r.watch, reply(500, 'InternalError'), 4);
    informer.start();
    await informer.waitForSync(30_000);
    const at = lists(api).map((r) => r.at);
    expect(at).toHaveLength(5);
    [50, 100, 200, 200].forEach((min, i) => expect(at[i + 1]! - at[i]!).toBeGreaterThanOrEqual(min - SLACK_MS));
    expect(lines.filter((l) => l.includes('"list/watch failed, retrying"'))).toHaveLength(4);
  });

  it('waits out a 429 with Retry-After on the watch itself: no failure, no relist', async () => {
    const { api, informer, lines } = await started();
    api.script((r) => r.watch, reply(429, 'TooManyRequests', { 'retry-after': '1' }), 1);
    informer.start();
    await informer.waitForSync();
    await until('watching after the wait', () => api.openWatches === 1);
    const watches = api.watchRequests();
    expect(watches).toHaveLength(2);
    expect(watches[1]!.at - watches[0]!.at).toBeGreaterThanOrEqual(1000 - SLACK_MS);
    expect(lists(api)).toHaveLength(1);
    expect(lines.some((l) => l.includes('list/watch failed'))).toBe(false);
    expect(informer.healthy()).toBe(true);
  });
});
