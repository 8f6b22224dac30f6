// Subscriber side of tests/integration/outbound-backpressure.sh.
//   OUTBOUND_EXPECT=pause: the partitions must have been paused and resumed
//   OUTBOUND_EXPECT=full: the queue must have been full (pausing optional)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, subscribe, waitFor } from './lib.mjs';
import { produce, sysCounter, waitCounter } from './outbound-lib.mjs';

const N = Number(process.env.OUTBOUND_BURST || 5000);
const KEY = process.env.OUTBOUND_KEY || 'bp';
const EXPECT = process.env.OUTBOUND_EXPECT || 'pause';
const open = [];
after(() => open.forEach((c) => c.end(true)));

test(`a burst of ${N} records through a full queue (${EXPECT}): nothing lost, nothing twice, in order`, async () => {
  const c = await connect({ protocolVersion: 5 });
  open.push(c);
  const got = [];
  c.on('message', (topic, payload) => got.push(Number(payload.toString())));
  await subscribe(c, `users/${KEY}/notifications`, { qos: 1 });
  const t0 = Date.now();
  // One key, so one partition: the order must hold too.
  await produce('notifications', Array.from({ length: N }, (_, i) => ({ key: KEY, value: String(i) })));
  await waitFor(() => got.length >= N, 120000, `${N} records (have ${got.length})`);
  const secs = (Date.now() - t0) / 1000;
  await waitCounter('published', N);
  const full = await sysCounter('queue_full');
  const pauses = await sysCounter('pauses');
  console.log(`${N} records in ${secs.toFixed(2)} s (${Math.round(N / secs)} msg/s, kcat included); queue full ${full} times, paused ${pauses} times`);
  assert.equal(got.length, N, 'no duplicates');
  for (let i = 0; i < N; i++) if (got[i] !== i) assert.fail(`record ${i} out of order: got ${got[i]}`);
  assert.ok(full >= 1, 'the queue was full at least once');
  if (EXPECT === 'pause') assert.ok(pauses >= 1, 'the partitions were paused');
  await waitFor(async () => (await sysCounter('paused')) === 0, 5000, 'resumed');
  await waitFor(async () => (await sysCounter('queue_depth')) === 0, 5000, 'queue drained');
  assert.equal(await sysCounter('dropped'), 0);
  assert.equal(await sysCounter('published'), N);
});
