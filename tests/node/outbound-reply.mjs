// Request/response over MQTT v5 through Kafka: a client publishes
// example.order.quote.requested with Response Topic + Correlation Data; the
// ingest path carries both into Kafka headers; tributary-responder answers
// on Kafka topic `replies`; the plugin's reply route publishes the answer to
// the response topic with the correlation data. Run by
// tests/integration/outbound-reply.sh (dev configuration, responder running).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { connect, subscribe, publish, waitFor, sleep } from './lib.mjs';
import { userProps } from './outbound-lib.mjs';

const open = [];
after(() => open.forEach((c) => c.end(true)));
async function client(opts = {}) {
  const c = await connect({ protocolVersion: 5, ...opts });
  open.push(c);
  return c;
}

const ajv = new Ajv2020({ strict: false });
addFormats(ajv);
const validQuote = ajv.compile(JSON.parse(readFileSync(new URL('../../schemas/events/example.order.quote.issued.json', import.meta.url))));

// The responder's example price list (tools/responder/responder.c): FNV-1a
// of the SKU -> 1.00 .. 99.99.
function unitCents(sku) {
  let h = 2166136261;
  for (const b of Buffer.from(sku)) h = Math.imul(h ^ b, 16777619) >>> 0;
  return 100 + (h % 9900);
}

function quoteRequest(lines, currency = 'EUR') {
  const orderId = randomUUID();
  return {
    orderId,
    event: {
      specversion: '1.0', id: randomUUID(), source: 'urn:test:web', type: 'example.order.quote.requested',
      datacontenttype: 'application/json',
      data: { orderId, customerId: 'c-42', lines, currency },
    },
  };
}

// Non-UTF-8 bytes on purpose: correlation data is binary.
function correlation() {
  return Buffer.concat([Buffer.from([0xff, 0x00, 0xfe, 0x80, 0xc3, 0x28]), randomBytes(10)]);
}

async function request(c, lines, corr, responseTopic = `clients/${c.options.clientId}/replies`) {
  const q = quoteRequest(lines);
  const rc = await publish(c, `events/order/${q.orderId}`, JSON.stringify(q.event), {
    qos: 1, properties: { responseTopic, correlationData: corr },
  });
  assert.equal(rc, 0, 'the request is accepted by the ingest path');
  return q;
}

test('round trip: the reply reaches the response topic with the correlation data, byte for byte', async () => {
  const c = await client();
  const replies = [];
  c.on('message', (topic, payload, packet) => replies.push({ topic, payload, packet }));
  await subscribe(c, `clients/${c.options.clientId}/replies`, { qos: 1 });
  const corr = correlation();
  const lines = [{ sku: 'SKU-1', qty: 2 }, { sku: 'BOOK-7', qty: 1 }];
  const t0 = Date.now();
  const q = await request(c, lines, corr);
  await waitFor(() => replies.length > 0, 15000, 'reply');
  const r = replies[0];
  assert.equal(r.topic, `clients/${c.options.clientId}/replies`);
  assert.ok(Buffer.isBuffer(r.packet.properties.correlationData));
  assert.equal(r.packet.properties.correlationData.toString('hex'), corr.toString('hex'));
  assert.equal(r.packet.properties.contentType, 'application/json');
  const props = Object.fromEntries(userProps(r.packet));
  assert.equal(props.specversion, '1.0');
  assert.equal(props.type, 'example.order.quote.issued');
  assert.equal(props.source, 'urn:tributary:responder');
  assert.match(props.id, /^[0-9a-f-]{36}$/);
  assert.equal(props.mqtt_response_topic, undefined, 'Kafka-internal headers are not forwarded');
  const data = JSON.parse(r.payload.toString());
  assert.ok(validQuote(data), JSON.stringify(validQuote.errors));
  assert.equal(data.orderId, q.orderId);
  assert.equal(data.currency, 'EUR');
  const cents = lines.reduce((s, l) => s + unitCents(l.sku) * l.qty, 0);
  assert.equal(data.total, cents / 100);
  assert.ok(Date.parse(data.validUntil) > t0 + 10 * 60 * 1000, 'valid for 15 minutes');
  await sleep(300);
  assert.equal(replies.length, 1, 'exactly one reply');
});

test('two concurrent requesters each get their own replies only', async () => {
  const a = await client();
  const b = await client();
  const got = new Map([[a, []], [b, []]]);
  for (const c of [a, b]) {
    c.on('message', (topic, payload, packet) => got.get(c).push({ topic, payload, packet }));
    // A wildcard on purpose: the ACL (pattern read clients/%c/replies) must
    // keep the other requester's replies away.
    await subscribe(c, 'clients/+/replies', { qos: 1 });
  }
  const sent = new Map([[a, []], [b, []]]);
  await Promise.all([a, b].map(async (c) => {
    for (let i = 0; i < 5; i++) {
      const corr = correlation();
      const q = await request(c, [{ sku: `SKU-${i}`, qty: i + 1 }], corr);
      sent.get(c).push({ corr: corr.toString('hex'), orderId: q.orderId });
    }
  }));
  await waitFor(() => got.get(a).length >= 5 && got.get(b).length >= 5, 20000, '5 replies each');
  await sleep(500);
  for (const c of [a, b]) {
    const mine = got.get(c);
    assert.equal(mine.length, 5, `${c.options.clientId}: exactly its 5 replies`);
    for (const m of mine) assert.equal(m.topic, `clients/${c.options.clientId}/replies`);
    const pairs = mine.map((m) => ({ corr: m.packet.properties.correlationData.toString('hex'), orderId: JSON.parse(m.payload).orderId }));
    const key = (x) => `${x.corr}/${x.orderId}`;
    assert.deepEqual(pairs.map(key).sort(), sent.get(c).map(key).sort(), 'each reply pairs with its request');
  }
});

// Issue #16, item 2: naming another client's reply topic would have the
// service's reply, with the forged correlation data, delivered to it. The
// ingest path refuses such a request (ingest.response_topics); the outbound
// reply route's allow-list stays a second line (outbound-notify.mjs).
test('a request naming another client\'s reply topic is refused; that client gets nothing', async () => {
  const attacker = await client();
  const victim = await client();
  const victimGot = [];
  victim.on('message', (topic, payload) => victimGot.push({ topic, payload }));
  await subscribe(victim, `clients/${victim.options.clientId}/replies`, { qos: 1 });
  const mine = [];
  const errors = [];
  attacker.on('message', (topic, payload) => (topic.endsWith('/errors') ? errors : mine).push(JSON.parse(payload)));
  await subscribe(attacker, `clients/${attacker.options.clientId}/errors`, { qos: 1 });
  await subscribe(attacker, `clients/${attacker.options.clientId}/replies`, { qos: 1 });

  const forged = quoteRequest([{ sku: 'X', qty: 1 }]);
  const rc = await publish(attacker, `events/order/${forged.orderId}`, JSON.stringify(forged.event), {
    qos: 1, properties: { responseTopic: `clients/${victim.options.clientId}/replies`, correlationData: correlation() },
  });
  assert.equal(rc, 0x87, 'PUBACK 0x87');
  await waitFor(() => errors.length > 0, 5000, 'error event');
  assert.equal(errors[0].data.reason, 'invalid_response_topic');
  assert.equal(errors[0].data.event.id, forged.event.id);

  // The attacker's own request, sent after, is answered: the pipeline ran.
  await request(attacker, [{ sku: 'X', qty: 1 }], correlation());
  await waitFor(() => mine.length >= 1, 15000, 'reply to the own request');
  await sleep(1000);
  assert.deepEqual(victimGot, [], 'no reply reached the other client');
  assert.equal(mine.length, 1);
});

test('a request without a response topic gets no reply and no error', async () => {
  const c = await client();
  const replies = [];
  c.on('message', (topic) => replies.push(topic));
  await subscribe(c, 'clients/+/replies', { qos: 1 });
  const q = quoteRequest([{ sku: 'Y', qty: 1 }]);
  assert.equal(await publish(c, `events/order/${q.orderId}`, JSON.stringify(q.event), { qos: 1 }), 0);
  // A request with a response topic sent after it is answered: the first
  // one was read (same partition order is not guaranteed, so wait a while).
  const corr = correlation();
  await request(c, [{ sku: 'Z', qty: 1 }], corr);
  await waitFor(() => replies.length >= 1, 15000, 'reply to the second request');
  await sleep(1000);
  assert.equal(replies.length, 1);
});
