/**
 * Cost of recording use on the gateway's request path (`UsageRecorder.record`)
 * and of merging a flush (`mergeUsage`), in process, no API server: the
 * per-request work must stay negligible next to a proxied request.
 *
 *   npm run build && node dist/bench/usage.js [--records 1000000] [--connections 100] [--consumers 20]
 */
import { mergeUsage, recordUse, type UsageDelta } from '../domain/usage.js';
import { UsageRecorder } from '../gateway/usage-recorder.js';
import type { KubeClient } from '../kube/client.js';
import { createLogger } from '../runtime/logger.js';
import { fmt, helpAndExit, numericFlag } from './stats.js';

helpAndExit(`
Usage: node dist/bench/usage.js [flags]   (docs/benchmarks.md, "Usage recording")
  --records N      usage records (1000000)
  --connections N  connections they are spread over (100)
  --consumers N    consumers per connection (20)
`);
const records = numericFlag('records', 1_000_000);
const connections = numericFlag('connections', 100);
const consumers = numericFlag('consumers', 20);

// record() never touches the client; the timer is not started, so nothing is written.
const recorder = new UsageRecorder({
  client: undefined as unknown as KubeClient,
  log: createLogger({ level: 'silent' }),
  replica: 'bench',
});
let started = performance.now();
for (let i = 0; i < records; i++)
  recorder.record('bench', `conn-${i % connections}`, 'uid', `sa-${i % consumers}`, i % 2 === 0 ? 'proxy' : 'files');
const recordNs = ((performance.now() - started) * 1e6) / records;

const delta: UsageDelta = {};
for (let i = 0; i < consumers * 2; i++) recordUse(delta, `sa-${i}`, 'proxy', Date.now() - i * 60_000, 100);
let stored = mergeUsage(undefined, {
  delta,
  replica: 'a',
  sequence: 1,
  streams: {},
  streamTtlMs: 180_000,
  nowMs: Date.now(),
});
const merges = 10_000;
started = performance.now();
for (let i = 0; i < merges; i++)
  stored = mergeUsage(stored, {
    delta,
    replica: `r${i % 8}`,
    sequence: i + 2,
    streams: { agent: 1 },
    streamTtlMs: 180_000,
    nowMs: Date.now(),
  });
const mergeUs = ((performance.now() - started) * 1000) / merges;

process.stdout.write(
  `record: ${fmt(recordNs, 0)} ns per request (${records} records, ${connections} connections, ${consumers} consumers)\n`,
);
process.stdout.write(
  `merge:  ${fmt(mergeUs, 1)} µs per flush (${consumers * 2} consumers in the delta, ${JSON.stringify(stored).length} bytes of status.usage)\n`,
);
