import { describe, expect, it } from 'vitest';
import type { ProbeOutcome } from '../../integrations/probe-types.js';
import { ProbeScheduler, type ProbeRun } from './probe-scheduler.js';

const outcome: ProbeOutcome = {
  reason: 'Succeeded',
  reachable: 'True',
  authenticated: 'True',
  message: 'ok',
  durationMs: 1,
};

/** A probe that runs until released or aborted, recording what happened to it. */
function heldProbe(log: string[], name: string): { run: ProbeRun; release: () => void } {
  let release = () => {};
  const run: ProbeRun = (signal) => {
    log.push(`start ${name}`);
    return new Promise((resolve) => {
      release = () => resolve(outcome);
      signal.addEventListener('abort', () => {
        log.push(`abort ${name}`);
        resolve({ ...outcome, reason: 'Timeout' });
      });
    });
  };
  return { run, release: () => release() };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('ProbeScheduler', () => {
  it("drops a forgotten key's queued probe without running it, and aborts its running one", async () => {
    const log: string[] = [];
    const done: string[] = [];
    const s = new ProbeScheduler(1, (k) => done.push(k));
    const a = heldProbe(log, 'a');
    const b = heldProbe(log, 'b');
    s.request('ns/a', { tag: 't', subject: 't' }, a.run);
    s.request('ns/b', { tag: 't', subject: 't' }, b.run);
    expect(s.queued).toBe(1);
    s.forget('ns/b');
    expect(s.queued).toBe(0);
    s.forget('ns/a');
    await tick();
    expect(log).toEqual(['start a', 'abort a']);
    expect(s.active).toBe(0);
    expect(s.result('ns/a')).toBeUndefined();
    expect(done).toEqual([]);
    // The window outlives the connection: one created again under the same name does not start a fresh one.
    expect(s.lastStartedAt('ns/a')).toBeDefined();
  });

  it('keeps one probe per key: a newer request replaces a queued one', async () => {
    const log: string[] = [];
    const s = new ProbeScheduler(1, () => undefined);
    const first = heldProbe(log, 'x');
    s.request('ns/x', { tag: 't', subject: 's' }, first.run);
    s.request('ns/y', { tag: 'old', subject: 's' }, heldProbe(log, 'y-old').run);
    s.request('ns/y', { tag: 'new', subject: 's' }, heldProbe(log, 'y-new').run);
    expect(s.queued).toBe(1);
    first.release();
    await tick();
    expect(log).toEqual(['start x', 'start y-new']);
    expect(s.result('ns/x')).toMatchObject({ tag: 't', subject: 's' });
    expect(s.isRunning('ns/y', 'new')).toBe(true);
  });

  it('gives one workspace at most its share of the slots: another workspace runs past its queue', async () => {
    const log: string[] = [];
    const s = new ProbeScheduler(4, () => undefined, Date.now, 2);
    const held = ['a', 'b', 'c', 'd'].map((n) => heldProbe(log, `greedy/${n}`));
    held.forEach((h, i) => s.request(`greedy/${'abcd'[i]}`, { tag: 't', subject: 's' }, h.run));
    s.request('other/x', { tag: 't', subject: 's' }, heldProbe(log, 'other/x').run);
    expect(log).toEqual(['start greedy/a', 'start greedy/b', 'start other/x']);
    expect(s.queued).toBe(2);
    held[0]!.release();
    await tick();
    expect(log.at(-1)).toBe('start greedy/c');
    expect(s.active).toBe(3);
  });

  it("takes workspaces in turn: a backlog in one does not hold another's probe behind it", async () => {
    const log: string[] = [];
    const s = new ProbeScheduler(2, () => undefined, Date.now, 2);
    const held = ['a', 'b', 'c', 'd', 'e'].map((n) => heldProbe(log, `busy/${n}`));
    held.forEach((h, i) => s.request(`busy/${'abcde'[i]}`, { tag: 't', subject: 's' }, h.run));
    s.request('quiet/x', { tag: 't', subject: 's' }, heldProbe(log, 'quiet/x').run);
    expect(s.queued).toBe(4);
    held[0]!.release();
    await tick();
    // busy/c..e were queued first, but the quiet workspace's turn comes before busy's next one.
    expect(log).toEqual(['start busy/a', 'start busy/b', 'start quiet/x']);
    held[1]!.release();
    await tick();
    expect(log.at(-1)).toBe('start busy/c');
    expect(s.queued).toBe(2);
  });

  it('reports a coalesced request once per window', async () => {
    let now = 1000;
    const s = new ProbeScheduler(
      1,
      () => undefined,
      () => now,
    );
    s.request('ns/a', { tag: 't', subject: 's' }, async () => outcome);
    expect(s.lastStartedAt('ns/a')).toBe(1000);
    expect(s.noticeCoalesced('ns/a')).toBe(true);
    expect(s.noticeCoalesced('ns/a')).toBe(false);
    await tick();
    now = 2000;
    s.request('ns/a', { tag: 't2', subject: 's' }, async () => outcome);
    expect(s.noticeCoalesced('ns/a')).toBe(true);
  });
});

describe('ProbeScheduler lanes', () => {
  it('reports a periodic probe that found the same outcome as routine; a changed outcome or a user request as urgent', async () => {
    const done: string[] = [];
    const s = new ProbeScheduler(4, (k, lane) => done.push(`${k} ${lane}`));
    const answer =
      (o: ProbeOutcome): ProbeRun =>
      () =>
        Promise.resolve(o);
    s.request('ns/a', { tag: 't', subject: 't', urgent: true }, answer(outcome)); // the first probe
    await tick();
    s.request('ns/a', { tag: 't', subject: 't' }, answer({ ...outcome, durationMs: 7 })); // due, same outcome
    await tick();
    s.request('ns/a', { tag: 't', subject: 't' }, answer({ ...outcome, reason: 'Timeout', reachable: 'False' }));
    await tick();
    s.request(
      'ns/a',
      { tag: 't2', subject: 't', urgent: true },
      answer({ ...outcome, reason: 'Timeout', reachable: 'False' }),
    );
    await tick();
    expect(done).toEqual(['ns/a urgent', 'ns/a routine', 'ns/a urgent', 'ns/a urgent']);
  });

  it('draws a jitter fraction after a probe a user caused and none after a periodic one (spec section 6)', async () => {
    const draws = [0.25, 0.75];
    const s = new ProbeScheduler(
      4,
      () => undefined,
      Date.now,
      4,
      () => draws.shift()!,
    );
    const answer: ProbeRun = () => Promise.resolve(outcome);
    s.request('ns/a', { tag: 't', subject: 't', urgent: true }, answer); // first probe: jittered
    await tick();
    expect(s.result('ns/a')?.jitter).toBe(0.25);
    s.request('ns/a', { tag: 't', subject: 't' }, answer); // periodic: keeps its spacing
    await tick();
    expect(s.result('ns/a')?.jitter).toBe(0);
    s.request('ns/a', { tag: 't2', subject: 't2', urgent: true }, answer); // new inputs: drawn again
    await tick();
    expect(s.result('ns/a')?.jitter).toBe(0.75);
  });
});
