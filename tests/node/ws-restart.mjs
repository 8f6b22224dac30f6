// The broker goes away and comes back under live WebSocket clients
// (driven by tests/integration/ws-broker-restart.sh through files in $T):
// clients get a close frame (1000) when the broker stops, new sessions get
// 1013 (try again later) while it is down, and mqtt.js reconnects and works
// again once it is back.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import { open, connectPacket, sleep } from './ws-lib.mjs';

const T = process.env.T;
const WS = `ws://127.0.0.1:${process.env.HTTP_PORT}/mqtt`;
const N = 20;

async function waitFile(name, ms = 30000) {
  const end = Date.now() + ms;
  while (!existsSync(`${T}/${name}`)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${name}`);
    await sleep(25);
  }
}

async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(25);
  }
}

const run = randomUUID().slice(0, 8);
const clients = [];
for (let i = 0; i < N; i++) {
  const c = mqtt.connect(WS, { protocolVersion: 5, clientId: `rs-${run}-${i}`, reconnectPeriod: 300, connectTimeout: 3000 });
  c.stats = { connects: 0, closes: 0, got: [] };
  c.on('connect', () => c.stats.connects++);
  c.on('close', () => c.stats.closes++);
  c.on('message', (t, p) => c.stats.got.push(p.toString()));
  c.on('error', () => {});
  c.subscribe(`restart/${run}/${i}`, { qos: 1 });
  clients.push(c);
}
await until(() => clients.every((c) => c.stats.connects === 1), 10000, 'all connected');

const raw = await open();
const reader = raw.mqtt();
raw.sendBinary(connectPacket(`rs-raw-${run}`));
assert.equal((await reader.packet()).cmd, 'connack');

writeFileSync(`${T}/ws-restart.ready`, '');
await waitFile('ws-restart.stopped');

const closed = await raw.closeFrame(10000);
assert.equal(closed?.code, 1000, `close frame when the broker stops: ${JSON.stringify(closed)}`);
await raw.closed();
await until(() => clients.every((c) => c.stats.closes >= 1), 10000, 'every mqtt.js client saw the close');

const down = await open();
const c2 = await down.closeFrame(10000);
assert.equal(c2?.code, 1013, 'broker down: try again later');
await down.closed();

writeFileSync(`${T}/ws-restart.checked`, '');
await waitFile('ws-restart.started');

await until(() => clients.every((c) => c.stats.connects >= 2 && c.connected), 20000, 'all reconnected');
await sleep(300); // resubscriptions (mqtt.js resubscribes on reconnect)
const pub = await mqtt.connectAsync(WS, { protocolVersion: 5, reconnectPeriod: 0 });
for (let i = 0; i < N; i++) await pub.publishAsync(`restart/${run}/${i}`, `back ${i}`, { qos: 1 });
await until(() => clients.every((c, i) => c.stats.got.includes(`back ${i}`)), 10000, 'messages after restart');
await pub.endAsync();
await Promise.all(clients.map((c) => c.endAsync()));
console.log(`ok: ${N} clients reconnected after the broker restart`);
