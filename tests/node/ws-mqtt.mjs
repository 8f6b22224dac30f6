// MQTT clients (mqtt.js) through nginx's WebSocket relay: MQTT 3.1.1 and 5,
// QoS 0/1/2 round trips, messages far larger than a buffer, bursts, mixing
// with plain TCP clients, and 1,000 concurrent WebSocket clients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import mqtt from 'mqtt';

const httpPort = Number(process.env.HTTP_PORT || 28080);
const mqttPort = Number(process.env.MQTT_PORT || 21883);
const WS = `ws://127.0.0.1:${httpPort}/mqtt`;
const TCP = `mqtt://127.0.0.1:${mqttPort}`;

const connect = (url, opts = {}) => mqtt.connectAsync(url, {
  protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10000, clientId: `ws-${randomUUID().slice(0, 12)}`, ...opts,
});

function nextMessage(client, topic, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no message on ${topic}`)), timeoutMs);
    const on = (tp, payload, packet) => {
      if (tp !== topic) return;
      clearTimeout(t);
      client.off('message', on);
      resolve({ payload, packet });
    };
    client.on('message', on);
  });
}

for (const version of [4, 5]) {
  for (const qos of [0, 1, 2]) {
    test(`MQTT ${version === 4 ? '3.1.1' : '5'} over WebSocket, QoS ${qos} round trip`, async () => {
      const c = await connect(WS, { protocolVersion: version });
      const topic = `rt/${randomUUID()}`;
      const granted = await c.subscribeAsync(topic, { qos });
      assert.equal(granted[0].qos, qos);
      const payload = randomBytes(300);
      const got = nextMessage(c, topic);
      await c.publishAsync(topic, payload, { qos });
      const m = await got;
      assert.deepEqual(m.payload, payload);
      assert.equal(m.packet.qos, qos);
      await c.endAsync();
    });
  }
}

test('MQTT 5 properties survive the relay (response topic, correlation data)', async () => {
  const c = await connect(WS);
  const topic = `props/${randomUUID()}`;
  await c.subscribeAsync(topic, { qos: 1 });
  const got = nextMessage(c, topic);
  await c.publishAsync(topic, 'q', { qos: 1, properties: { responseTopic: 'r/1', correlationData: Buffer.from('corr-7') } });
  const m = await got;
  assert.equal(m.packet.properties.responseTopic, 'r/1');
  assert.equal(m.packet.properties.correlationData.toString(), 'corr-7');
  await c.endAsync();
});

// Mosquitto 2.0's websockets listener sends a large message 4 KB per turn of
// its loop (about 40 KB/s when idle: nginx-module/README.md): through it,
// 256 KB; through the TCP listener, 1 and 5 MB.
const bigSizes = process.env.WS_RELAY_MODE === 'websockets' ? [256 << 10] : [1 << 20, 5 << 20];
for (const size of bigSizes) {
  test(`${size >> 10} KB payload, far larger than a frame buffer, both ways`, async () => {
    const c = await connect(WS);
    const topic = `big/${randomUUID()}`;
    await c.subscribeAsync(topic, { qos: 1 });
    const payload = randomBytes(size);
    const got = nextMessage(c, topic, 30000);
    await c.publishAsync(topic, payload, { qos: 1 });
    const m = await got;
    assert.equal(m.payload.length, size);
    assert.ok(m.payload.equals(payload), 'payload bytes intact');
    await c.endAsync();
  });
}

test('burst of 5,000 QoS 1 messages arrives complete and in order', async () => {
  const c = await connect(WS);
  const topic = `burst/${randomUUID()}`;
  await c.subscribeAsync(topic, { qos: 1 });
  const seen = [];
  c.on('message', (t, p) => { if (t === topic) seen.push(p.readUInt32BE(0)); });
  const pubs = [];
  for (let i = 0; i < 5000; i++) {
    const b = Buffer.alloc(200); b.writeUInt32BE(i, 0);
    pubs.push(c.publishAsync(topic, b, { qos: 1 }));
  }
  await Promise.all(pubs);
  const end = Date.now() + 20000;
  while (seen.length < 5000 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.equal(seen.length, 5000);
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
  await c.endAsync();
});

test('WebSocket and TCP clients see each other', async () => {
  const ws = await connect(WS);
  const tcp = await connect(TCP);
  const a = `mix/${randomUUID()}`, b = `mix/${randomUUID()}`;
  await ws.subscribeAsync(a, { qos: 1 });
  await tcp.subscribeAsync(b, { qos: 1 });
  const gotWs = nextMessage(ws, a), gotTcp = nextMessage(tcp, b);
  await tcp.publishAsync(a, 'from tcp', { qos: 1 });
  await ws.publishAsync(b, 'from ws', { qos: 1 });
  assert.equal((await gotWs).payload.toString(), 'from tcp');
  assert.equal((await gotTcp).payload.toString(), 'from ws');
  await ws.endAsync();
  await tcp.endAsync();
});

test('1,000 concurrent WebSocket clients each connect, subscribe and get a message', async () => {
  const N = 1000, run = randomUUID().slice(0, 8);
  const clients = [];
  for (let i = 0; i < N; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 100); j++) {
      batch.push((async () => {
        const c = await connect(WS, { clientId: `many-${run}-${j}`, keepalive: 120 });
        await c.subscribeAsync(`many/${run}/${j}`, { qos: 1 });
        return c;
      })());
    }
    clients.push(...(await Promise.all(batch)));
  }
  assert.equal(clients.length, N);
  const got = clients.map((c, j) => nextMessage(c, `many/${run}/${j}`, 30000));
  const pub = await connect(TCP);
  for (let j = 0; j < N; j++) pub.publish(`many/${run}/${j}`, `hello ${j}`, { qos: 1 });
  const msgs = await Promise.all(got);
  msgs.forEach((m, j) => assert.equal(m.payload.toString(), `hello ${j}`));
  await pub.endAsync();
  await Promise.all(clients.map((c) => c.endAsync()));
});
