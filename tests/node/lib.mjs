// Helpers for the Node integration clients: MQTT connections (mqtt.js),
// reading what reached Kafka (kcat, a real consumer), CloudEvents builders.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';

export const env = {
  mqttPort: Number(process.env.MQTT_PORT || 21883),
  httpPort: Number(process.env.HTTP_PORT || 28080),
  kafka: process.env.KAFKA_BOOTSTRAP || '127.0.0.1:29092',
};

export function connect(opts = {}) {
  const url = opts.url || `mqtt://127.0.0.1:${env.mqttPort}`;
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, {
      protocolVersion: 5,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      clientId: opts.clientId || `t-${randomUUID().slice(0, 8)}`,
      ...opts,
    });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

export function subscribe(client, topic, opts = { qos: 1 }) {
  return new Promise((resolve, reject) =>
    client.subscribe(topic, opts, (err, granted) => (err ? reject(err) : resolve(granted))));
}

// Publishes and resolves with the PUBACK/PUBREC reason code (0 for v3.1.1 or QoS 0).
export function publish(client, topic, payload, opts = {}) {
  return new Promise((resolve, reject) => {
    client.publish(topic, payload, { qos: 1, ...opts }, (err, packet) => {
      if (err && err.code !== undefined) return resolve(err.code); // mqtt.js: reason >= 0x80 is an error
      if (err) return reject(err);
      resolve(packet && packet.reasonCode ? packet.reasonCode : 0);
    });
  });
}

// Collects messages on `topic` for `client` into an array (returned).
export function collect(client, topic) {
  const got = [];
  client.on('message', (t, payload, packet) => {
    if (mqttMatch(topic, t)) got.push({ topic: t, payload, packet });
  });
  return got;
}

export function mqttMatch(filter, topic) {
  const f = filter.split('/'), t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export async function waitFor(pred, timeoutMs = 10000, what = 'condition') {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every record of a Kafka topic, read from the beginning with kcat:
// [{topic, partition, offset, key, value, headers: {name: value}}]
export function kafkaRecords(topic, { timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    // fetch.wait.max.ms: reading to the end of a topic would otherwise
    // wait librdkafka's default 500 ms for a fetch that has nothing more.
    const p = spawn('kcat', ['-q', '-b', env.kafka, '-X', 'fetch.wait.max.ms=10', '-C', '-t', topic,
      '-o', 'beginning', '-e', '-J'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', errText = '';
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`kcat ${topic} timed out`)); }, timeoutMs);
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (errText += d));
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0 && !/Unknown topic|UNKNOWN_TOPIC/.test(errText)) return reject(new Error(`kcat exit ${code}: ${errText}`));
      const recs = out.split('\n').filter(Boolean).map((l) => {
        const r = JSON.parse(l);
        const headers = {};
        const h = r.headers || [];
        for (let i = 0; i + 1 < h.length; i += 2) headers[h[i]] = h[i + 1];
        return { topic: r.topic, partition: r.partition, offset: r.offset, key: r.key, value: r.payload, headers };
      });
      resolve(recs);
    });
  });
}

// Produces one record with kcat (headers: {name: value}).
export function kafkaProduce(topic, { key, value, headers = {} }) {
  return new Promise((resolve, reject) => {
    const args = ['-q', '-b', env.kafka, '-P', '-t', topic];
    if (key !== undefined) args.push('-K', '\x01');
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
    const p = spawn('kcat', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let errText = '';
    p.stderr.on('data', (d) => (errText += d));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`kcat produce: ${errText}`))));
    p.stdin.end(key !== undefined ? `${key}\x01${value}` : value);
  });
}

export function orderPlaced(overrides = {}, dataOverrides = {}) {
  const orderId = dataOverrides.orderId || randomUUID();
  return {
    specversion: '1.0',
    id: randomUUID(),
    source: 'urn:test:shop',
    type: 'example.order.placed',
    datacontenttype: 'application/json',
    ...overrides,
    data: {
      orderId,
      customerId: 'c-1',
      lines: [{ sku: 'SKU-1', qty: 2 }],
      total: 19.99,
      currency: 'EUR',
      ...dataOverrides,
    },
  };
}
