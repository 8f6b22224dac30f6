// Subscriber side of tests/integration/outbound-restart.sh: a persistent
// MQTT v5 session (fixed client id, clean start off, session expiry) that
// reconnects by itself and must receive records 0..N-1 of one key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { env, waitFor } from './lib.mjs';

const N = Number(process.env.OUTBOUND_RECORDS || 500);

test(`a persistent session receives all ${N} records across a broker restart`, async () => {
  const c = mqtt.connect(`mqtt://127.0.0.1:${env.mqttPort}`, {
    protocolVersion: 5, clientId: 'outbound-restart-sub', clean: false,
    properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 200, connectTimeout: 3000,
  });
  const seen = new Map();
  let reconnects = 0;
  c.on('message', (topic, payload) => {
    const n = Number(payload.toString());
    seen.set(n, (seen.get(n) || 0) + 1);
  });
  c.on('reconnect', () => reconnects++);
  c.on('error', () => {}); // refused while the broker is down: retried
  try {
    await new Promise((resolve) => c.once('connect', resolve));
    await new Promise((resolve, reject) => c.subscribe('users/restart-user/notifications', { qos: 1 }, (e) => (e ? reject(e) : resolve())));
    writeFileSync(process.env.READY_FILE, 'ready');
    await waitFor(() => seen.size >= N, 90000, `${N} distinct records (have ${seen.size})`).catch((e) => {
      const missing = [];
      for (let i = 0; i < N; i++) if (!seen.has(i)) missing.push(i);
      throw new Error(`${e.message}; missing ${missing.length}: ${missing.slice(0, 20).join(' ')}`);
    });
    const dups = [...seen.values()].filter((v) => v > 1).length;
    console.log(`received ${N} distinct records, ${dups} delivered more than once, ${reconnects} reconnect attempts`);
    assert.ok(reconnects > 0, 'the broker restart was seen by the subscriber');
    for (let i = 0; i < N; i++) assert.ok(seen.has(i), `record ${i}`);
  } finally {
    c.end(true);
  }
});
