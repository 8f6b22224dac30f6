// 10,000 mixed valid and invalid events from several clients: Kafka must hold
// exactly the valid ones, once each, in per-key order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, publish, waitFor, kafkaRecords, orderPlaced } from './lib.mjs';

const TOTAL = Number(process.env.BULK_EVENTS || 10000);
const CLIENTS = 4;
const KEYS = 40;

test(`${TOTAL} mixed events: Kafka holds exactly the valid ones, in per-key order`, { timeout: 300000 }, async () => {
  const run = randomUUID().slice(0, 8);
  const keys = Array.from({ length: KEYS }, () => randomUUID());
  const seq = new Map(keys.map((k) => [k, 0]));
  const expected = new Set();
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => connect({ protocolVersion: 5 })));
  const plans = clients.map(() => []);
  for (let i = 0; i < TOTAL; i++) {
    const k = keys[i % KEYS];
    const valid = (i * 7919) % 10 >= 3; // 70% valid, deterministic
    const n = seq.get(k);
    let ev;
    if (valid) {
      seq.set(k, n + 1);
      ev = orderPlaced({ id: `${run}-${i}` }, { orderId: k, total: n, customerId: run });
      expected.add(ev.id);
    } else {
      ev = orderPlaced({ id: `${run}-${i}` }, { orderId: k, total: n, customerId: run, lines: [] });
    }
    plans[(i % KEYS) % CLIENTS].push({ topic: `events/order/${k}`, payload: JSON.stringify(ev), valid });
  }
  // Each key belongs to one client, which publishes in order.
  const results = await Promise.all(clients.map(async (c, ci) => {
    let ok = 0, refused = 0;
    const window = 100;
    const plan = plans[ci];
    for (let i = 0; i < plan.length; i += window) {
      const rcs = await Promise.all(plan.slice(i, i + window).map((p) => publish(c, p.topic, p.payload, { qos: 1 })));
      rcs.forEach((rc, j) => {
        assert.equal(rc, plan[i + j].valid ? 0 : 0x87);
        if (rc === 0) ok++; else refused++;
      });
    }
    return { ok, refused };
  }));
  const accepted = results.reduce((a, r) => a + r.ok, 0);
  assert.equal(accepted, expected.size);

  let mine;
  await waitFor(async () => {
    mine = (await kafkaRecords('events.order', { timeoutMs: 60000 })).filter((r) => r.headers.ce_id && r.headers.ce_id.startsWith(`${run}-`));
    return mine.length >= expected.size;
  }, 60000, 'all valid events in Kafka');
  const ids = mine.map((r) => r.headers.ce_id);
  assert.equal(new Set(ids).size, ids.length, 'no duplicates');
  assert.equal(ids.length, expected.size, 'exactly the valid events');
  for (const id of ids) assert.ok(expected.has(id), `unexpected ${id}`);
  // Per key: one partition, totals 0,1,2,... in offset order.
  const byKey = new Map();
  for (const r of mine.sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
    if (!byKey.has(r.key)) byKey.set(r.key, { partition: r.partition, totals: [] });
    const e = byKey.get(r.key);
    assert.equal(r.partition, e.partition, 'a key stays on one partition');
    e.totals.push(JSON.parse(r.value).total);
  }
  for (const [k, e] of byKey) assert.deepEqual(e.totals, e.totals.map((_, i) => i), `order of key ${k}`);
  clients.forEach((c) => c.end());
});
