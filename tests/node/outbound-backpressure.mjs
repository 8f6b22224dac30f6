// Subscriber side of tests/integration/outbound-backpressure.sh.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, subscribe, waitFor } from './lib.mjs';
import { produce, sysCounter, waitCounter } from './outbound-lib.mjs';

const N = Number(process.env.OUTBOUND_BURST || 5000);
const open = [];
after(() => open.forEach((c) => c.end(true)));

test(`a burst of ${N} records through a full queue: paused, resumed, nothing lost`, async () => {
  const c = await connect({ protocolVersion: 5 });
  open.push(c);
  const got = [];
  c.on('message', (topic, payload) => got.push(Number(payload.toString())));
  await subscribe(c, 'users/bp/notifications', { qos: 1 });
  const pausesBefore = await sysCounter('pauses');
  const t0 = Date.now();
  // One key, so one partition: the order must hold too.
  await produce('notifications', Array.from({ length: N }, (_, i) => ({ key: 'bp', value: String(i) })));
  await waitFor(() => got.length >= N, 120000, `${N} records (have ${got.length})`);
  const secs = (Date.now() - t0) / 1000;
  console.log(`${N} records in ${secs.toFixed(2)} s (${Math.round(N / secs)} msg/s, kcat included)`);
  assert.equal(got.length, N, 'no duplicates either');
  for (let i = 0; i < N; i++) if (got[i] !== i) assert.fail(`record ${i} out of order: got ${got[i]}`);
  const pauses = await waitCounter('pauses', pausesBefore + 1);
  console.log(`paused ${pauses - pausesBefore} times`);
  await waitFor(async () => (await sysCounter('paused')) === 0, 5000, 'resumed');
  assert.equal(await sysCounter('queue_depth'), 0);
  assert.equal(await sysCounter('dropped'), 0);
  assert.equal(await sysCounter('published'), N);
});
