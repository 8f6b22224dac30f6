// The ingest path end to end: real Mosquitto with the plugin, the dev Kafka,
// mqtt.js clients (3.1.1 and 5), kcat to read what reached Kafka.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { Kafka } from 'cloudevents';
import {
  connect, subscribe, publish, collect, waitFor, sleep, kafkaRecords, orderPlaced, env,
} from './lib.mjs';

// The names of the Kafka cluster's topics (kcat -L).
function kafkaTopics() {
  return new Promise((resolve, reject) => {
    execFile('kcat', ['-q', '-b', env.kafka, '-L', '-J'], (err, stdout) => {
      if (err) return reject(err);
      resolve(JSON.parse(stdout).topics.map((t) => t.topic));
    });
  });
}

const NOT_AUTHORIZED = 0x87;

async function recordsById(topic) {
  const byId = new Map();
  for (const r of await kafkaRecords(topic)) {
    const id = r.headers.ce_id || (r.value && r.value.startsWith('{') ? JSON.parse(r.value).id : undefined);
    if (!byId.has(id)) byId.set(id, []);
    byId.get(id).push(r);
  }
  return byId;
}

async function expectRecord(topic, id) {
  let recs;
  await waitFor(async () => (recs = (await recordsById(topic)).get(id)), 15000, `record ${id} in ${topic}`);
  await sleep(200);
  recs = (await recordsById(topic)).get(id);
  assert.equal(recs.length, 1, `exactly one record for ${id}`);
  return recs[0];
}

// A client that publishes and listens to its own error topic.
async function client(version = 5) {
  const c = await connect({ protocolVersion: version });
  const errors = collect(c, `clients/${c.options.clientId}/errors`);
  await subscribe(c, `clients/${c.options.clientId}/errors`);
  return { c, errors };
}

async function expectRejected(cl, topic, payload, reason, opts = {}) {
  const rc = await publish(cl.c, topic, payload, { qos: 1, ...opts });
  if (cl.c.options.protocolVersion === 5) assert.equal(rc, NOT_AUTHORIZED, 'PUBACK reason 0x87');
  await waitFor(() => cl.errors.length > 0, 5000, `error event (${reason})`);
  const ev = JSON.parse(cl.errors.shift().payload.toString());
  assert.equal(ev.type, 'tributary.event.rejected');
  assert.equal(ev.specversion, '1.0');
  assert.equal(ev.data.reason, reason, `reason: ${JSON.stringify(ev.data)}`);
  assert.equal(ev.data.mqtt.topic, topic);
  assert.ok(ev.data.message.length > 0);
  return ev;
}

for (const version of [4, 5]) {
  for (const qos of [0, 1, 2]) {
    test(`valid structured event, MQTT ${version === 4 ? '3.1.1' : '5'}, QoS ${qos}`, async () => {
      const { c, errors } = await client(version);
      const ev = orderPlaced();
      const rc = await publish(c, `events/order/${ev.data.orderId}`, JSON.stringify(ev), { qos });
      assert.equal(rc, 0);
      const r = await expectRecord('events.order', ev.id);
      assert.equal(r.key, ev.data.orderId);
      assert.deepEqual(JSON.parse(r.value), ev.data);
      assert.equal(r.value, JSON.stringify(ev.data), 'data bytes unchanged (19.99 stays 19.99)');
      assert.equal(r.headers.ce_specversion, '1.0');
      assert.equal(r.headers.ce_type, 'example.order.placed');
      assert.equal(r.headers.ce_source, 'urn:test:shop');
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers.mqtt_topic, `events/order/${ev.data.orderId}`);
      assert.equal(r.headers.mqtt_client_id, c.options.clientId);
      assert.equal(r.headers.mqtt_qos, String(qos));
      assert.equal(r.headers.ce_authtype, 'unauthenticated');
      assert.equal(r.headers.ce_authid, c.options.clientId);
      assert.match(r.headers.ce_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(errors.length, 0);
      c.end();
    });
  }
}

for (const qos of [0, 1, 2]) {
  test(`valid binary-mode event (MQTT 5 user properties), QoS ${qos}`, async () => {
    const { c, errors } = await client(5);
    const ev = orderPlaced();
    const payload = JSON.stringify(ev.data, null, 1); // bytes as sent, whitespace included
    const rc = await publish(c, `events/order/${ev.data.orderId}`, payload, {
      qos,
      properties: {
        contentType: 'application/json',
        userProperties: { specversion: '1.0', id: ev.id, source: 'urn:test:binary', type: ev.type, subject: 'orders' },
      },
    });
    assert.equal(rc, 0);
    const r = await expectRecord('events.order', ev.id);
    assert.equal(r.key, ev.data.orderId);
    assert.equal(r.value, payload, 'binary mode keeps the payload bytes');
    assert.equal(r.headers.ce_source, 'urn:test:binary');
    assert.equal(r.headers.ce_subject, 'orders');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(errors.length, 0);
    c.end();
  });
}

test('missing id and time are generated (UUIDv7, RFC 3339)', async () => {
  const { c } = await client(5);
  const ev = orderPlaced();
  delete ev.id;
  const marker = `c-${randomUUID()}`;
  ev.data.customerId = marker;
  assert.equal(await publish(c, `events/order/${ev.data.orderId}`, JSON.stringify(ev)), 0);
  let rec;
  await waitFor(async () => (rec = (await kafkaRecords('events.order')).find((r) => r.value.includes(marker))), 15000, 'record');
  assert.match(rec.headers.ce_id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(Math.abs(Date.parse(rec.headers.ce_time) - Date.now()) < 60000);
  c.end();
});

test('forged authcontext attributes are overwritten by the real sender', async () => {
  const { c } = await client(5);
  const ev = orderPlaced({ authtype: 'service_account', authid: 'admin', authclaims: 'root' });
  assert.equal(await publish(c, `events/order/${ev.data.orderId}`, JSON.stringify(ev)), 0);
  const r = await expectRecord('events.order', ev.id);
  assert.equal(r.headers.ce_authtype, 'unauthenticated');
  assert.equal(r.headers.ce_authid, c.options.clientId);
  assert.equal(r.headers.ce_authclaims, undefined);
  c.end();
});

test('username is the authid when the broker authenticated one', async () => {
  const c = await connect({ protocolVersion: 5, username: 'alice' });
  const ev = orderPlaced({ authid: 'mallory' });
  assert.equal(await publish(c, `events/order/${ev.data.orderId}`, JSON.stringify(ev)), 0);
  const r = await expectRecord('events.order', ev.id);
  assert.equal(r.headers.ce_authtype, 'user');
  assert.equal(r.headers.ce_authid, 'alice');
  c.end();
});

test('v5 response topic and correlation data travel as Kafka headers', async () => {
  const { c } = await client(5);
  const ev = orderPlaced();
  const rc = await publish(c, `events/order/${ev.data.orderId}`, JSON.stringify(ev), {
    properties: { responseTopic: `clients/${c.options.clientId}/replies`, correlationData: Buffer.from('corr-42') },
  });
  assert.equal(rc, 0);
  const r = await expectRecord('events.order', ev.id);
  assert.equal(r.headers.mqtt_response_topic, `clients/${c.options.clientId}/replies`);
  assert.equal(r.headers.mqtt_correlation_data, 'corr-42');
  c.end();
});

test('structured-mode route: the whole event as the Kafka value', async () => {
  const { c } = await client(5);
  const ev = orderPlaced();
  assert.equal(await publish(c, `audit/order/${ev.data.orderId}`, JSON.stringify(ev)), 0);
  let rec;
  await waitFor(async () => (rec = (await kafkaRecords('audit.order')).find((r) => r.value.includes(ev.id))), 15000, 'audit record');
  assert.equal(rec.headers['content-type'], 'application/cloudevents+json');
  const v = JSON.parse(rec.value);
  assert.equal(v.id, ev.id);
  assert.equal(v.type, 'example.order.placed');
  assert.deepEqual(v.data, ev.data);
  assert.equal(v.authtype, 'unauthenticated');
  c.end();
});

// What a consumer using the CloudEvents SDK's Kafka binding gets: the
// record as kcat read it (key, headers, value bytes).
function sdkEvent(r) {
  return Kafka.toEvent({ key: r.key, headers: r.headers, value: Buffer.from(r.value) });
}

test('JSON data without datacontenttype: content-type application/json, SDK reads JSON', async () => {
  const { c, errors } = await client(5);
  const ev = orderPlaced();
  delete ev.datacontenttype;
  assert.equal(await publish(c, `events/order/${ev.data.orderId}`, JSON.stringify(ev)), 0);
  const r = await expectRecord('events.order', ev.id);
  assert.equal(r.headers['content-type'], 'application/json', 'implied by the JSON event format');
  const got = sdkEvent(r);
  assert.equal(got.id, ev.id);
  assert.equal(Buffer.isBuffer(got.data), false, 'data is JSON, not bytes');
  assert.deepEqual(got.data, ev.data);
  // binary mode without a Content Type: the payload is read as JSON too
  const bin = orderPlaced();
  assert.equal(await publish(c, `events/order/${bin.data.orderId}`, JSON.stringify(bin.data), {
    properties: { userProperties: { specversion: '1.0', id: bin.id, source: 'urn:test:binary', type: bin.type } },
  }), 0);
  const rb = await expectRecord('events.order', bin.id);
  assert.equal(rb.headers['content-type'], 'application/json');
  assert.deepEqual(sdkEvent(rb).data, bin.data);
  assert.equal(errors.length, 0);
  c.end();
});

// (Binary mode cannot carry them here: Mosquitto itself refuses MQTT
// strings with U+0001-U+001F or U+007F-U+009F as malformed UTF-8 and
// disconnects; the plugin's check of user properties is unit-tested.)
test('control characters in attributes are refused (invalid_attribute)', async () => {
  const cl = await client(5);
  const cases = [
    ['structured id', (e) => { e.id = 'a\r\nb\u001b[31m'; return [JSON.stringify(e), {}]; }],
    ['structured extension (C1)', (e) => { e.myext = 'x\u0085y'; return [JSON.stringify(e), {}]; }],
    ['structured DEL in source', (e) => { e.source = 'urn:\u007f'; return [JSON.stringify(e), {}]; }],
  ];
  for (const [name, make] of cases) {
    const ev = orderPlaced();
    const [payload, opts] = make(ev);
    const err = await expectRejected(cl, `events/order/${ev.data.orderId}`, payload, 'invalid_attribute', opts);
    assert.match(err.data.message, /control character/, name);
  }
  const ok = orderPlaced();
  assert.equal(await publish(cl.c, `events/order/${ok.data.orderId}`, JSON.stringify(ok)), 0);
  await expectRecord('events.order', ok.id);
  const recs = await kafkaRecords('events.order');
  assert.equal(recs.filter((r) => /[\u0000-\u001f\u007f-\u009f]/.test(Object.values(r.headers).join(''))).length, 0,
    'no control character in any Kafka header');
  cl.c.end();
});

// RFC 8259 allows any number; JSON.stringify cannot write these, so the
// payload's text is edited: placeholders for the numbers' literals.
function withNumbers(ev, numbers) {
  let text = JSON.stringify(ev);
  for (const [placeholder, literal] of Object.entries(numbers)) text = text.replace(`"${placeholder}"`, literal);
  return text;
}

test('big numbers in data: accepted, validated exactly, bytes unchanged', async () => {
  const cl = await client(5);
  const qty = '1234567890123456789012345678901234567890';
  const ev = orderPlaced({}, { total: 'TOTAL', lines: [{ sku: 'SKU-1', qty: 'QTY' }] });
  const payload = withNumbers(ev, { TOTAL: '1e400', QTY: qty });
  assert.equal(await publish(cl.c, `events/order/${ev.data.orderId}`, payload), 0);
  const r = await expectRecord('events.order', ev.id);
  const data = payload.slice(payload.indexOf('"data":') + 7, -1);
  assert.equal(r.value, data, 'data bytes unchanged');
  assert.ok(r.value.includes('"total":1e400') && r.value.includes(`"qty":${qty}`));
  // structured Kafka mode: the same bytes inside the event
  const audit = orderPlaced({}, { total: 'TOTAL', lines: [{ sku: 'SKU-1', qty: 'QTY' }] });
  assert.equal(await publish(cl.c, `audit/order/${audit.data.orderId}`, withNumbers(audit, { TOTAL: '1e400', QTY: qty })), 0);
  let rec;
  await waitFor(async () => (rec = (await kafkaRecords('audit.order')).find((x) => x.value.includes(audit.id))), 15000, 'audit record');
  assert.ok(rec.value.includes(`"data":{"orderId":"${audit.data.orderId}"`) && rec.value.includes('"total":1e400'), rec.value);
  assert.ok(rec.value.includes(`"qty":${qty}`), rec.value);
  // exact validation: as doubles these would pass (-0 >= 0; 1.0 is an integer)
  for (const [numbers, where] of [
    [{ TOTAL: '-1e-400', QTY: '2' }, '/total'],
    [{ TOTAL: '5', QTY: '1.00000000000000000001' }, '/lines/0/qty'],
    [{ TOTAL: '5', QTY: '0.99999999999999999999e0' }, '/lines/0/qty'],
  ]) {
    const bad = orderPlaced({}, { total: 'TOTAL', lines: [{ sku: 'SKU-1', qty: 'QTY' }] });
    const err = await expectRejected(cl, `events/order/${bad.data.orderId}`, withNumbers(bad, numbers), 'schema_validation_failed');
    assert.ok(err.data.errors.some((e) => e.instanceLocation === where), JSON.stringify(err.data.errors));
  }
  cl.c.end();
});

const invalid = [
  ['invalid data (qty 0)', () => { const e = orderPlaced({}, { lines: [{ sku: 'A', qty: 0 }] }); return [e, JSON.stringify(e)]; }, 'schema_validation_failed'],
  ['extra property', () => { const e = orderPlaced({}, { coupon: 'FREE' }); return [e, JSON.stringify(e)]; }, 'schema_validation_failed'],
  ['bad currency', () => { const e = orderPlaced({}, { currency: 'euro' }); return [e, JSON.stringify(e)]; }, 'schema_validation_failed'],
  ['unknown type', () => { const e = orderPlaced({ type: 'example.order.teleported' }); return [e, JSON.stringify(e)]; }, 'unknown_type'],
  ['malformed JSON', () => { const e = orderPlaced(); return [e, JSON.stringify(e).slice(0, -3)]; }, 'invalid_json'],
  ['invalid UTF-8', () => { const e = orderPlaced(); return [e, Buffer.concat([Buffer.from(JSON.stringify(e).slice(0, -2)), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])]; }, 'invalid_utf8'],
  ['missing source', () => { const e = orderPlaced(); delete e.source; return [e, JSON.stringify(e)]; }, 'missing_attribute'],
  ['missing type', () => { const e = orderPlaced(); delete e.type; return [e, JSON.stringify(e)]; }, 'missing_attribute'],
  ['wrong specversion', () => { const e = orderPlaced({ specversion: '0.3' }); return [e, JSON.stringify(e)]; }, 'invalid_attribute'],
  ['bad time', () => { const e = orderPlaced({ time: 'yesterday' }); return [e, JSON.stringify(e)]; }, 'invalid_attribute'],
  ['not an object', () => { const e = orderPlaced(); return [e, '[1,2,3]']; }, 'not_an_event'],
  ['oversize payload', () => { const e = orderPlaced({ padding: 'x'.repeat(300 * 1024) }); return [e, JSON.stringify(e)]; }, 'payload_too_large'],
];

for (const version of [4, 5]) {
  for (const [name, make, reason] of invalid) {
    test(`rejected, MQTT ${version === 4 ? '3.1.1' : '5'}: ${name}`, async () => {
      const cl = await client(version);
      const [ev, payload] = make();
      const topic = `events/order/${ev.data.orderId}`;
      const err = await expectRejected(cl, topic, payload, reason);
      if (reason !== 'invalid_json' && reason !== 'invalid_utf8' && reason !== 'not_an_event' && reason !== 'payload_too_large') {
        assert.equal(err.data.event.id, ev.id);
      }
      if (reason === 'schema_validation_failed') {
        assert.ok(err.data.errors.length >= 1);
        for (const e of err.data.errors) {
          assert.equal(typeof e.instanceLocation, 'string');
          assert.equal(typeof e.keywordLocation, 'string');
          assert.ok(e.message.length > 0);
        }
        if (name.includes('qty')) assert.ok(err.data.errors.some((e) => e.instanceLocation === '/lines/0/qty'), JSON.stringify(err.data.errors));
      }
      // Still connected and able to publish a valid event.
      const ok = orderPlaced();
      assert.equal(await publish(cl.c, `events/order/${ok.data.orderId}`, JSON.stringify(ok)), 0);
      await expectRecord('events.order', ok.id);
      if (ev.id) assert.equal((await recordsById('events.order')).get(ev.id), undefined, 'rejected event not in Kafka');
      cl.c.end();
    });
  }
}

test('binary mode with non-JSON content type for a JSON schema is rejected', async () => {
  const cl = await client(5);
  const ev = orderPlaced();
  await expectRejected(cl, `events/order/${ev.data.orderId}`, 'plain text', 'invalid_data', {
    properties: { contentType: 'text/plain', userProperties: { specversion: '1.0', id: ev.id, source: 's', type: ev.type } },
  });
  cl.c.end();
});

test('a rejected event never reaches subscribers; other clients are unaffected', async () => {
  const watcher = await connect({ protocolVersion: 5 });
  const seen = collect(watcher, 'sandbox/#');
  await subscribe(watcher, 'sandbox/#');
  const cl = await client(5);
  const ev = orderPlaced({}, { total: -1 });
  await expectRejected(cl, `events/order/${ev.data.orderId}`, JSON.stringify(ev), 'schema_validation_failed');
  assert.equal(watcher.connected, true);
  // Topics without a route are left to the broker untouched.
  assert.equal(await publish(cl.c, 'sandbox/chat', 'not an event'), 0);
  await waitFor(() => seen.length === 1, 5000, 'unrouted message delivered');
  assert.equal(seen[0].payload.toString(), 'not an event');
  watcher.end();
  cl.c.end();
});

test('error events go only to the client that sent the event', async () => {
  const a = await client(5);
  const b = await client(5);
  const spy = collect(b.c, `clients/${a.c.options.clientId}/errors`);
  await new Promise((resolve) => b.c.subscribe(`clients/${a.c.options.clientId}/errors`, { qos: 1 }, resolve));
  const ev = orderPlaced({}, { currency: 'x' });
  await expectRejected(a, `events/order/${ev.data.orderId}`, JSON.stringify(ev), 'schema_validation_failed');
  await sleep(300);
  assert.equal(spy.length, 0, 'another client cannot read the error topic');
  a.c.end();
  b.c.end();
});

// Issue #16, item 3: a topic level that goes into the Kafka topic name must
// be non-empty and match the route's capture_pattern (default letters,
// digits, _ and -), and the name must be a legal Kafka topic name; else no
// client could be kept from creating topics or writing into any events.*.
const badTopics = [
  ['empty level', (id) => `events//${id}`, 'events.', /level \{aggregate\} is empty/],
  ['dotted level', (id) => `events/order.secret/${id}`, 'events.order.secret', /does not match the route's capture_pattern/],
  ['level with a space', (id) => `events/or der/${id}`, null, /does not match the route's capture_pattern/],
  ['name longer than Kafka allows', (id) => `events/${'o'.repeat(250)}/${id}`, null, /legal Kafka topic name/],
];
for (const version of [4, 5]) {
  for (const [name, topicOf, kafkaTopic, message] of badTopics) {
    test(`rejected, MQTT ${version === 4 ? '3.1.1' : '5'}: ${name} in a Kafka topic capture (invalid_topic)`, async () => {
      const cl = await client(version);
      const ev = orderPlaced();
      const topic = topicOf(ev.data.orderId);
      const err = await expectRejected(cl, topic, JSON.stringify(ev), 'invalid_topic');
      assert.match(err.data.message, message);
      // Accepted events of the same client still go through: the refusal
      // came before anything reached Kafka.
      const ok = orderPlaced();
      assert.equal(await publish(cl.c, `events/order/${ok.data.orderId}`, JSON.stringify(ok), { qos: 1 }), 0);
      await expectRecord('events.order', ok.id);
      // Listed, not consumed: a consumer's metadata request would create it.
      if (kafkaTopic) assert.ok(!(await kafkaTopics()).includes(kafkaTopic), `no Kafka topic '${kafkaTopic}' created`);
      assert.equal((await recordsById('events.order')).get(ev.id), undefined, 'not in events.order either');
      cl.c.end();
    });
  }
}

// The route's "types" (example.{aggregate}.*): events.order holds order events only.
test('an event type the route does not list is refused (type_not_allowed)', async () => {
  for (const version of [4, 5]) {
    const cl = await client(version);
    const orderId = randomUUID();
    const ev = {
      specversion: '1.0', id: randomUUID(), source: 'urn:test:shop', type: 'example.notification',
      datacontenttype: 'application/json', data: { message: 'not an order event' },
    };
    const err = await expectRejected(cl, `events/order/${orderId}`, JSON.stringify(ev), 'type_not_allowed');
    assert.match(err.data.message, /example\.notification/);
    assert.equal(err.data.event.type, 'example.notification');
    // A listed type on the same route is accepted.
    const ok = orderPlaced({ type: 'example.order.cancelled' }, { orderId });
    ok.data = { orderId, reason: 'customer request' };
    assert.equal(await publish(cl.c, `events/order/${orderId}`, JSON.stringify(ok), { qos: 1 }), 0);
    await expectRecord('events.order', ok.id);
    assert.equal((await recordsById('events.order')).get(ev.id), undefined, 'refused event not in Kafka');
    // A valid order event cannot be put into another aggregate's topic.
    const misplaced = orderPlaced();
    await expectRejected(cl, `events/invoice/${misplaced.data.orderId}`, JSON.stringify(misplaced), 'type_not_allowed');
    assert.ok(!(await kafkaTopics()).includes('events.invoice'), 'no Kafka topic events.invoice created');
    cl.c.end();
  }
});

// Issue #16, item 2: a v5 Response Topic must be one the sender may receive
// replies on (ingest.response_topics, default clients/{client_id}/replies).
test('a response topic naming another client is refused (invalid_response_topic)', async () => {
  const cl = await client(5);
  const victim = await connect({ protocolVersion: 5 });
  for (const responseTopic of [`clients/${victim.options.clientId}/replies`, `clients/${victim.options.clientId}/errors`,
    'users/victim/notifications', `clients/${cl.c.options.clientId}/replies/x`]) {
    const ev = orderPlaced();
    const err = await expectRejected(cl, `events/order/${ev.data.orderId}`, JSON.stringify(ev), 'invalid_response_topic', {
      properties: { responseTopic, correlationData: Buffer.from('forged') },
    });
    assert.ok(err.data.message.includes(responseTopic), err.data.message);
    assert.equal(err.data.event.id, ev.id);
    await sleep(300);
    assert.equal((await recordsById('events.order')).get(ev.id), undefined, 'refused request not in Kafka');
  }
  victim.end();
  cl.c.end();
});
