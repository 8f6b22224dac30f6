// Outbound routes end to end: kcat -> dev Kafka -> plugin -> Mosquitto ->
// mqtt.js subscribers. Run by tests/integration/outbound-notify.sh, which
// writes the routes this file relies on.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, subscribe, collect, waitFor, sleep } from './lib.mjs';
import { produce, sysCounter, waitCounter, userProps } from './outbound-lib.mjs';

const uid = () => randomUUID().slice(0, 8);

// Every client is closed at the end even when an assertion failed, so that
// a failure does not keep node (and the test) alive.
const open = [];
after(() => open.forEach((c) => c.end(true)));
async function client(version = 5) {
  const c = await connect({ protocolVersion: version });
  open.push(c);
  return c;
}

async function listener(filter, version = 5) {
  const c = await client(version);
  const got = collect(c, filter);
  await subscribe(c, filter, { qos: 1 });
  return { c, got };
}

async function one(got, what, timeoutMs = 10000) {
  await waitFor(() => got.length > 0, timeoutMs, what);
  return got[0];
}

test('a plain record (no headers at all) is published as is, key -> topic', async () => {
  const user = `u-${uid()}`;
  const { c, got } = await listener(`users/${user}/notifications`);
  const value = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x41]); // any bytes
  await produce('notifications', [{ key: user, value }]);
  const m = await one(got, 'plain record');
  assert.equal(m.topic, `users/${user}/notifications`);
  assert.deepEqual(m.payload, value);
  assert.equal(m.packet.qos, 1);
  assert.equal(m.packet.retain, false);
  assert.deepEqual(userProps(m.packet), []);
  assert.equal(m.packet.properties?.contentType, undefined);
  c.end();
});

test('a plain record keeps its content-type header as the Content Type property', async () => {
  const user = `u-${uid()}`;
  const { c, got } = await listener(`users/${user}/notifications`);
  await produce('notifications', [{ key: user, value: 'hi there', headers: { 'content-type': 'text/plain; charset=utf-8' } }]);
  const m = await one(got, 'plain record with content type');
  assert.equal(m.payload.toString(), 'hi there');
  assert.equal(m.packet.properties.contentType, 'text/plain; charset=utf-8');
  assert.deepEqual(userProps(m.packet), []);
  c.end();
});

test('binary mode: ce_* headers become user properties, content-type the Content Type', async () => {
  const user = `u-${uid()}`;
  const { c, got } = await listener(`users/${user}/notifications`);
  const data = '{"message":"Your order shipped","orderId":"3c1e4b1e-8d7a-4f57-9a55-2f1a4c3b9e10"}';
  await produce('notifications', [{
    key: user, value: data,
    headers: {
      ce_specversion: '1.0', ce_id: 'evt-1', ce_source: 'urn:shop:shipping', ce_type: 'example.notification',
      ce_time: '2026-01-02T03:04:05.678Z', ce_subject: 'order/42', 'content-type': 'application/json',
      mqtt_client_id: 'not-forwarded', other: 'not-forwarded',
    },
  }]);
  const m = await one(got, 'binary-mode event');
  assert.equal(m.payload.toString(), data, 'data bytes unchanged');
  assert.equal(m.packet.properties.contentType, 'application/json');
  const props = Object.fromEntries(userProps(m.packet));
  assert.deepEqual(props, {
    specversion: '1.0', id: 'evt-1', source: 'urn:shop:shipping', type: 'example.notification',
    time: '2026-01-02T03:04:05.678Z', subject: 'order/42',
  });
  c.end();
});

test('binary mode, MQTT 3.1.1 subscriber: the data arrives (attributes need v5)', async () => {
  const user = `u-${uid()}`;
  const { c, got } = await listener(`users/${user}/notifications`, 4);
  await produce('notifications', [{ key: user, value: '{"message":"v3"}', headers: { ce_specversion: '1.0', ce_id: 'x', ce_source: 's', ce_type: 'example.notification' } }]);
  const m = await one(got, 'v3.1.1 delivery');
  assert.equal(m.payload.toString(), '{"message":"v3"}');
  c.end();
});

test('a structured record on a binary route passes through unchanged', async () => {
  const user = `u-${uid()}`;
  const { c, got } = await listener(`users/${user}/notifications`);
  const ev = JSON.stringify({ specversion: '1.0', id: 'e2', source: 'urn:x', type: 'example.notification', data: { message: 'm' } });
  await produce('notifications', [{ key: user, value: ev, headers: { 'content-type': 'application/cloudevents+json; charset=UTF-8' } }]);
  const m = await one(got, 'structured pass-through');
  assert.equal(m.payload.toString(), ev);
  assert.equal(m.packet.properties.contentType, 'application/cloudevents+json; charset=UTF-8');
  assert.deepEqual(userProps(m.packet), []);
  c.end();
});

for (const version of [4, 5]) {
  test(`structured route: a binary record becomes CloudEvents JSON (MQTT ${version === 4 ? '3.1.1' : '5'})`, async () => {
    const user = `u-${uid()}`;
    const { c, got } = await listener(`sandbox/users/${user}/events`, version);
    await produce('notifications.structured', [{
      key: user, value: '{"message":"total 19.99","n":19.99}',
      headers: { ce_specversion: '1.0', ce_id: 'e3', ce_source: 'urn:x', ce_type: 'example.notification', ce_time: '2026-01-02T03:04:05Z', 'content-type': 'application/json' },
    }]);
    const m = await one(got, 'structured event');
    const text = m.payload.toString();
    const ev = JSON.parse(text);
    assert.deepEqual(ev, {
      specversion: '1.0', id: 'e3', source: 'urn:x', type: 'example.notification', time: '2026-01-02T03:04:05Z',
      datacontenttype: 'application/json', data: { message: 'total 19.99', n: 19.99 },
    });
    assert.match(text, /"n":19\.99[,}]/, 'numbers keep their shortest form');
    if (version === 5) {
      assert.equal(m.packet.properties.contentType, 'application/cloudevents+json');
      assert.deepEqual(userProps(m.packet), []);
    }
    c.end();
  });
}

test('structured route: non-JSON data travels as data_base64', async () => {
  const user = `u-${uid()}`;
  const { c, got } = await listener(`sandbox/users/${user}/events`);
  const bytes = Buffer.from([1, 2, 3, 250, 251]);
  await produce('notifications.structured', [{ key: user, value: bytes, headers: { ce_specversion: '1.0', ce_id: 'e4', ce_source: 'urn:x', ce_type: 'example.blob', 'content-type': 'application/octet-stream' } }]);
  const ev = JSON.parse((await one(got, 'base64 event')).payload.toString());
  assert.equal(ev.datacontenttype, 'application/octet-stream');
  assert.deepEqual(Buffer.from(ev.data_base64, 'base64'), bytes);
  assert.equal(ev.data, undefined);
  c.end();
});

test('structured route: a structured record passes through; a plain one is dropped', async () => {
  const user = `u-${uid()}`;
  const { c, got } = await listener(`sandbox/users/${user}/events`);
  const before = await sysCounter('dropped/not_cloudevents');
  const ev = JSON.stringify({ specversion: '1.0', id: 'e5', source: 'urn:x', type: 't', data: 1 });
  await produce('notifications.structured', [{ key: user, value: 'not an event' }]);
  await produce('notifications.structured', [{ key: user, value: ev, headers: { 'content-type': 'application/cloudevents+json' } }]);
  const m = await one(got, 'structured record');
  assert.equal(m.payload.toString(), ev);
  await waitCounter('dropped/not_cloudevents', before + 1);
  await sleep(300);
  assert.equal(got.length, 1, 'the plain record was not published');
  c.end();
});

test('structured route: a control character in a ce_ header drops the record (invalid_event)', async () => {
  const user = `u-${uid()}`;
  const { c, got } = await listener(`sandbox/users/${user}/events`);
  const before = await sysCounter('dropped/invalid_event');
  const headers = { ce_specversion: '1.0', ce_source: 'urn:x', ce_type: 'example.notification', 'content-type': 'application/json' };
  await produce('notifications.structured', [{ key: user, value: '{"n":1}', headers: { ...headers, ce_id: 'a\x1b[31mb' } }]);
  await produce('notifications.structured', [{ key: user, value: '{"n":2}', headers: { ...headers, ce_id: 'ok' } }]);
  const m = await one(got, 'the valid record');
  assert.equal(JSON.parse(m.payload.toString()).id, 'ok');
  await waitCounter('dropped/invalid_event', before + 1);
  await sleep(300);
  assert.equal(got.length, 1, 'the record with a control character was not published');
  c.end();
});

// One rule for every reader of records (CloudEvents Kafka binding, shared
// with the nginx stream): binary mode needs ce_specversion; structured mode
// is the media type application/cloudevents+json, parameters allowed,
// checked before any ce_ header.
test('a ce_type header without ce_specversion is a plain record, on both kinds of route', async () => {
  const user = `u-${uid()}`;
  const bin = await listener(`users/${user}/notifications`);
  const str = await listener(`sandbox/users/${user}/events`);
  const before = await sysCounter('dropped/not_cloudevents');
  const headers = { ce_type: 'example.notification', ce_id: 'p1', ce_source: 'urn:x' };
  await produce('notifications', [{ key: user, value: 'no specversion', headers }]);
  await produce('notifications.structured', [{ key: user, value: 'no specversion', headers }]);
  const m = await one(bin.got, 'plain record');
  assert.equal(m.payload.toString(), 'no specversion');
  assert.deepEqual(userProps(m.packet), [], 'a plain record has no user properties');
  await waitCounter('dropped/not_cloudevents', before + 1);
  await sleep(300);
  assert.equal(str.got.length, 0, 'a plain record is not published on a structured route');
});

test('structured mode: a content-type with a parameter wins over ce_ headers', async () => {
  const user = `u-${uid()}`;
  const bin = await listener(`users/${user}/notifications`);
  const str = await listener(`sandbox/users/${user}/events`);
  const ev = JSON.stringify({ specversion: '1.0', id: 's7', source: 'urn:x', type: 'example.notification', data: 7 });
  const headers = { 'content-type': 'application/cloudevents+json; charset=utf-8', ce_specversion: '1.0', ce_type: 'example.stale' };
  await produce('notifications', [{ key: user, value: ev, headers }]);
  await produce('notifications.structured', [{ key: user, value: ev, headers }]);
  const m = await one(bin.got, 'structured record, binary route');
  assert.equal(m.payload.toString(), ev);
  assert.equal(m.packet.properties.contentType, 'application/cloudevents+json; charset=utf-8');
  assert.deepEqual(userProps(m.packet), [], 'ce_ headers of a structured record are not attributes');
  assert.equal((await one(str.got, 'structured record, structured route')).payload.toString(), ev);
});

test('binary route: ce_ headers that are not a valid event make a plain record, counted', async () => {
  const user = `u-${uid()}`;
  const { got } = await listener(`users/${user}/notifications`);
  const before = await sysCounter('not_events').catch(() => 0); // the counter is checked below
  const headers = { ce_specversion: '1.0', ce_source: 'urn:x', ce_type: 'example.notification', 'content-type': 'application/json' };
  await produce('notifications', [{ key: user, value: '{"n":1}', headers: { ...headers, ce_id: 'a\x1b[31mb' } }]);
  await produce('notifications', [{ key: user, value: '{"n":2}', headers: { ...headers, ce_id: 'ok' } }]);
  await waitFor(() => got.length >= 2, 10000, 'both records');
  const [bad, good] = got;
  assert.equal(bad.payload.toString(), '{"n":1}', 'the data is delivered');
  assert.deepEqual(userProps(bad.packet), [], 'no partial set of attributes');
  assert.equal(bad.packet.properties.contentType, 'application/json');
  assert.equal(Object.fromEntries(userProps(good.packet)).id, 'ok');
  await waitCounter('not_events', before + 1);
});

test('routes by CloudEvents type, header and partition; first match wins; message expiry', async () => {
  const subject = `o-${uid()}`;
  const region = `r-${uid()}`;
  const { c, got } = await listener('sandbox/#');
  await produce('orders.out', [{ key: 'k1', value: '{"a":1}', headers: { ce_specversion: '1.0', ce_id: 'a', ce_source: 's', ce_type: 'example.order.placed', ce_subject: subject } }]);
  await produce('orders.out', [{ key: 'k1', value: 'alert', headers: { channel: 'alerts', region, ce_specversion: '1.0', ce_id: 'b', ce_source: 's', ce_type: 'example.order.placed', ce_subject: subject } }]);
  await produce('orders.out', [{ key: 'k1', value: 'other', headers: { ce_specversion: '1.0', ce_id: 'c', ce_source: 's', ce_type: 'example.invoice.sent', ce_subject: subject } }]);
  await waitFor(() => got.length >= 3, 10000, 'three routed records');
  await sleep(200);
  const byPayload = Object.fromEntries(got.map((m) => [m.payload.toString(), m]));
  assert.equal(byPayload['{"a":1}'].topic, `sandbox/orders/${subject}/example.order.placed`);
  assert.equal(byPayload['{"a":1}'].packet.properties.messageExpiryInterval, 60);
  assert.equal(byPayload.alert.topic, `sandbox/alerts/${region}`, 'header route comes first');
  assert.equal(byPayload.alert.packet.qos, 0);
  assert.match(byPayload.other.topic, /^sandbox\/orders\/other\/[01]$/);
  assert.equal(got.length, 3);
  c.end();
});

test('retain: the last record per key is retained for later subscribers', async () => {
  const key = `dev-${uid()}`;
  await produce('status', [{ key, value: 'online' }]);
  await produce('status', [{ key, value: 'offline' }]);
  await sleep(500);
  const { c, got } = await listener(`sandbox/status/${key}`);
  const m = await one(got, 'retained status');
  assert.equal(m.payload.toString(), 'offline');
  assert.equal(m.packet.retain, true);
  c.end();
});

test('values that would change the topic structure are refused, not published', async () => {
  const { c, got } = await listener('users/#');
  const before = await sysCounter('dropped/topic_invalid');
  const bad = ['a/b', 'a+b', '#', '', '$SYS'];
  for (const key of bad) await produce('notifications', [{ key, value: `bad ${JSON.stringify(key)}` }]);
  await waitCounter('dropped/topic_invalid', before + 4); // '$SYS' makes a valid level: users/$SYS/notifications
  const leaked = got.filter((m) => m.payload.toString().startsWith('bad ') && m.topic !== 'users/$SYS/notifications');
  assert.deepEqual(leaked.map((m) => m.topic), []);
  c.end();
});

test('records no route matches are counted and skipped', async () => {
  const user = `u-${uid()}`;
  const { c, got } = await listener(`users/${user}/notifications`);
  const before = await sysCounter('dropped/no_route');
  // Kafka topic "typed" has one route, for type example.notification only.
  await produce('typed', [{ key: user, value: 'plain' }]);
  await produce('typed', [{ key: user, value: 'other type', headers: { ce_specversion: '1.0', ce_id: 'x', ce_source: 's', ce_type: 'example.notificationx' } }]);
  await produce('typed', [{ key: user, value: 'typed', headers: { ce_specversion: '1.0', ce_id: 'y', ce_source: 's', ce_type: 'example.notification' } }]);
  await waitCounter('dropped/no_route', before + 2);
  await one(got, 'the typed record');
  await sleep(200);
  assert.deepEqual(got.map((m) => m.payload.toString()), ['typed']);
  c.end();
});

test('reply route: a response topic outside the allowed patterns, or none, is refused', async () => {
  const refusedBefore = await sysCounter('dropped/reply_topic_refused');
  const noTopicBefore = await sysCounter('dropped/no_response_topic');
  const { c, got } = await listener('users/#');
  await produce('replies', [{ key: 'k', value: 'r1', headers: { mqtt_response_topic: 'users/x/notifications' } }]);
  await produce('replies', [{ key: 'k', value: 'r2', headers: { mqtt_response_topic: 'clients/a/replies/../../users/x' } }]);
  await produce('replies', [{ key: 'k', value: 'r3' }]);
  await waitCounter('dropped/reply_topic_refused', refusedBefore + 2);
  await waitCounter('dropped/no_response_topic', noTopicBefore + 1);
  await sleep(200);
  assert.equal(got.filter((m) => /^r\d$/.test(m.payload.toString())).length, 0);
  c.end();
});

test('order per key is kept, and latency is far below the 100 ms idle tick', async () => {
  const user = `u-${uid()}`;
  const c = await client(5);
  const got = [];
  c.on('message', (t, payload) => got.push({ at: performance.now(), n: Number(payload.toString()) }));
  await subscribe(c, `users/${user}/notifications`, { qos: 1 });
  // Ordering: one burst, one key.
  await produce('notifications', Array.from({ length: 200 }, (_, i) => ({ key: user, value: String(i) })));
  await waitFor(() => got.length >= 200, 15000, '200 records');
  assert.deepEqual(got.map((g) => g.n), Array.from({ length: 200 }, (_, i) => i));
  // Latency: from kcat's exit (the record is acknowledged by Kafka, kcat's
  // start-up excluded) to the delivery; it can even be negative.
  const lat = [];
  for (let i = 0; i < 15; i++) {
    got.length = 0;
    await produce('notifications', [{ key: user, value: '1000' }]);
    const produced = performance.now();
    await waitFor(() => got.length > 0, 5000, 'record');
    lat.push(got[0].at - produced);
  }
  lat.sort((a, b) => a - b);
  const median = lat[Math.floor(lat.length / 2)];
  console.log(`kcat exit -> MQTT delivery: median ${median.toFixed(1)} ms, max ${lat[lat.length - 1].toFixed(1)} ms`);
  // Without the wake this is ~50 ms on average (uniform over the tick).
  assert.ok(median < 30, `median ${median.toFixed(1)} ms`);
  c.end();
});
