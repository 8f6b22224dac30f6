// QoS 2 retransmissions: a client that never saw the PUBREC resends the
// PUBLISH (DUP, same packet id) on its next connection. Mosquitto 2.0.11
// shows it to the plugin again, so an event whose id the broker generates
// must be produced with the same id and time, or Kafka would hold it as two
// events. A raw MQTT client, since mqtt.js cannot be made to lose a PUBREC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { env, waitFor, kafkaRecords, orderPlaced } from './lib.mjs';

const CONNACK = 2, PUBREC = 5, PUBCOMP = 7;

function varint(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 128;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}
const u16 = (n) => Buffer.from([n >> 8, n & 0xff]);
const str = (s) => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)]);
const packet = (first, ...parts) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([first]), varint(body.length), body]);
};

class RawClient {
  static open(version) {
    return new Promise((resolve, reject) => {
      const s = net.connect(env.mqttPort, '127.0.0.1');
      const c = new RawClient(s, version);
      s.once('connect', () => resolve(c));
      s.once('error', reject);
    });
  }

  constructor(socket, version) {
    this.s = socket;
    this.v = version;
    this.buf = Buffer.alloc(0);
    this.waiters = [];
    this.closed = new Promise((r) => socket.once('close', r));
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.drain();
    });
  }

  drain() {
    while (this.waiters.length && this.buf.length >= 2) {
      let len = 0, mul = 1, i = 1;
      for (;;) {
        if (i >= this.buf.length) return;
        const b = this.buf[i++];
        len += (b & 127) * mul;
        mul *= 128;
        if (!(b & 128)) break;
      }
      if (this.buf.length < i + len) return;
      const p = { type: this.buf[0] >> 4, body: this.buf.subarray(i, i + len) };
      this.buf = this.buf.subarray(i + len);
      this.waiters.shift()(p);
    }
  }

  next(type) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no packet of type ${type}`)), 5000);
      this.waiters.push((p) => {
        clearTimeout(t);
        if (p.type !== type) reject(new Error(`packet type ${p.type}, expected ${type}`));
        else resolve(p);
      });
      this.drain();
    });
  }

  // A persistent session unless `clean`; resolves with session present.
  async connect(clientId, clean) {
    const props = this.v === 5 ? Buffer.concat([varint(5), Buffer.from([0x11, 0, 0, 0x0e, 0x10])]) : Buffer.alloc(0);
    this.s.write(packet(0x10, str('MQTT'), Buffer.from([this.v, clean ? 0x02 : 0, 0, 60]), props, str(clientId)));
    const ack = await this.next(CONNACK);
    assert.equal(ack.body[1], 0, 'CONNACK accepted');
    return ack.body[0] & 1;
  }

  // QoS 2 PUBLISH (v5: `props`, encoded); resolves with the PUBREC reason code.
  async publish2(topic, payload, mid, dup = false, props = Buffer.alloc(0)) {
    if (this.v === 5) props = Buffer.concat([varint(props.length), props]);
    this.s.write(packet(0x34 | (dup ? 0x08 : 0), str(topic), u16(mid), props, Buffer.from(payload)));
    const rec = await this.next(PUBREC);
    assert.equal(rec.body.readUInt16BE(0), mid, 'PUBREC packet id');
    return rec.body.length > 2 ? rec.body[2] : 0;
  }

  async release(mid) {
    this.s.write(packet(0x62, u16(mid)));
    await this.next(PUBCOMP);
  }

  async close() {
    this.s.end(packet(0xe0));
    await this.closed;
  }

  async drop() {
    this.s.destroy();
    await this.closed;
  }
}

// The records of one key in events.order, once there are `n` (exactly).
async function recordsOf(key, n) {
  let recs = [];
  await waitFor(async () => {
    recs = (await kafkaRecords('events.order')).filter((r) => r.key === key);
    return recs.length >= n;
  }, 15000, `${n} records of ${key}`);
  assert.equal(recs.length, n, 'every copy the client sent reached Kafka, once');
  return recs;
}

// An event the broker gives an id to, and its MQTT topic.
function anonymousEvent() {
  const ev = orderPlaced();
  delete ev.id;
  return { payload: JSON.stringify(ev), topic: `events/order/${ev.data.orderId}`, key: ev.data.orderId };
}

// Publishes at QoS 2 and sends no PUBREL: the caller then drops the
// connection, as if the PUBREC had been lost.
async function sendLost(c, ev, mid) {
  assert.equal(await c.publish2(ev.topic, ev.payload, mid), 0);
}

async function persistent(version, clientId) {
  const c = await RawClient.open(version);
  await c.connect(clientId, false);
  return c;
}

// A client that sends one QoS 2 event (and so is remembered) and leaves.
async function otherClient() {
  const c = await RawClient.open(5);
  await c.connect(`resend-other-${randomUUID().slice(0, 8)}`, true);
  const ev = anonymousEvent();
  assert.equal(await c.publish2(ev.topic, ev.payload, 1), 0);
  await c.release(1);
  await c.close();
}

async function idsOf(ev, n) {
  return (await recordsOf(ev.key, n)).map((r) => r.headers.ce_id);
}

for (const version of [5, 4]) {
  test(`MQTT ${version === 5 ? '5' : '3.1.1'}: a QoS 2 PUBLISH resent after a reconnect keeps its generated id and time`, async () => {
    const clientId = `resend-${version}-${randomUUID().slice(0, 8)}`;
    const { payload, topic, key } = anonymousEvent();

    // First connection: the broker takes the event and sends PUBREC, which
    // this client "loses": it drops the connection without PUBREL.
    const c1 = await RawClient.open(version);
    assert.equal(await c1.connect(clientId, false), 0);
    assert.equal(await c1.publish2(topic, payload, 7), 0);
    await c1.drop();

    // Next connection: the session is there; the PUBLISH is resent as the
    // protocol requires (DUP, same packet id), then released.
    const c2 = await RawClient.open(version);
    assert.equal(await c2.connect(clientId, false), 1, 'session present');
    assert.equal(await c2.publish2(topic, payload, 7, true), 0);
    await c2.release(7);
    // The same bytes again under a new packet id on this connection: a new
    // event, since clients resend only after a reconnect.
    assert.equal(await c2.publish2(topic, payload, 8), 0);
    await c2.release(8);
    await c2.close();

    // A clean start has no session to resend from: a new event too.
    const c3 = await RawClient.open(version);
    assert.equal(await c3.connect(clientId, true), 0);
    assert.equal(await c3.publish2(topic, payload, 7), 0);
    await c3.release(7);
    await c3.close();

    const recs = await recordsOf(key, 4);
    const ids = recs.map((r) => r.headers.ce_id), times = recs.map((r) => r.headers.ce_time);
    assert.equal(ids[1], ids[0], 'the retransmission carries the first copy\'s id');
    assert.equal(times[1], times[0], 'and its time');
    assert.equal(new Set([ids[0], ids[2], ids[3]]).size, 3, 'the other two are new events');
    for (const r of recs) assert.equal(r.headers.mqtt_client_id, clientId);
  });
}

if (process.env.RESEND_CLIENTS === '2') {
  test('ingest.qos2_resend_clients 2: a recently active client is kept, the least recent forgotten', async () => {
    const a = `resend-a-${randomUUID().slice(0, 8)}`;
    const e1 = anonymousEvent(), e2 = anonymousEvent();

    let c = await persistent(5, a);
    await sendLost(c, e1, 1);
    await c.drop();
    await otherClient(); // remembered: a, other
    c = await persistent(5, a);
    assert.equal(await c.publish2(e1.topic, e1.payload, 1, true), 0); // a is the most recent again
    await c.release(1);
    await sendLost(c, e2, 2);
    await c.drop();
    await otherClient(); // forgets the first other client, not a
    c = await persistent(5, a);
    assert.equal(await c.publish2(e2.topic, e2.payload, 2, true), 0);
    await c.release(2);
    await c.close();
    let ids = await idsOf(e1, 2);
    assert.equal(ids[1], ids[0], 'first retransmission: same id');
    ids = await idsOf(e2, 2);
    assert.equal(ids[1], ids[0], 'a was kept: same id');

    // Two other clients since a's last event: a is forgotten, and its
    // retransmission is a new event, as without this memory.
    const e3 = anonymousEvent();
    c = await persistent(5, a);
    await sendLost(c, e3, 3);
    await c.drop();
    await otherClient();
    await otherClient();
    c = await persistent(5, a);
    assert.equal(await c.publish2(e3.topic, e3.payload, 3, true), 0);
    await c.release(3);
    await c.close();
    ids = await idsOf(e3, 2);
    assert.notEqual(ids[1], ids[0], 'forgotten: a new id');
  });
}

// MQTT v5 binary mode: the attributes are user properties, the content
// type a property, the payload the data.
function binaryProps(attrs) {
  const parts = [Buffer.from([0x03]), str('application/json')];
  for (const [k, v] of Object.entries(attrs)) parts.push(Buffer.from([0x26]), str(k), str(v));
  return Buffer.concat(parts);
}

test('MQTT 5 binary mode: the attributes are part of what a retransmission must repeat', async () => {
  const clientId = `resend-bin-${randomUUID().slice(0, 8)}`;
  const ev = orderPlaced();
  const data = JSON.stringify(ev.data), topic = `events/order/${ev.data.orderId}`;
  const attrs = (subject) => binaryProps({ specversion: '1.0', source: 'urn:test:shop', type: 'example.order.placed', subject });

  let c = await RawClient.open(5);
  await c.connect(clientId, false);
  assert.equal(await c.publish2(topic, data, 1, false, attrs('first')), 0);
  await c.drop();
  c = await RawClient.open(5);
  assert.equal(await c.connect(clientId, false), 1, 'session present');
  // The same data with another subject is another event, not a resend.
  assert.equal(await c.publish2(topic, data, 2, false, attrs('second')), 0);
  await c.release(2);
  assert.equal(await c.publish2(topic, data, 1, true, attrs('first')), 0);
  await c.release(1);
  await c.close();

  const recs = await recordsOf(ev.data.orderId, 3);
  const bySubject = (s) => recs.filter((r) => r.headers.ce_subject === s).map((r) => r.headers.ce_id);
  const first = bySubject('first'), second = bySubject('second');
  assert.equal(first.length, 2);
  assert.equal(first[1], first[0], 'the resent copy keeps its id');
  assert.equal(second.length, 1);
  assert.ok(!first.includes(second[0]), 'the other subject is a new event');
});

test('MQTT 5: a session taken over while its connection is still open resends too', async () => {
  const clientId = `resend-takeover-${randomUUID().slice(0, 8)}`;
  const ev = anonymousEvent();
  const c1 = await RawClient.open(5);
  await c1.connect(clientId, false);
  assert.equal(await c1.publish2(ev.topic, ev.payload, 1), 0);
  // c1 stays open: the broker closes it when c2 takes the session over.
  const c2 = await RawClient.open(5);
  assert.equal(await c2.connect(clientId, false), 1, 'session present');
  await c1.closed;
  assert.equal(await c2.publish2(ev.topic, ev.payload, 1, true), 0);
  await c2.release(1);
  await c2.close();
  const recs = await recordsOf(ev.key, 2);
  assert.equal(recs[1].headers.ce_id, recs[0].headers.ce_id, 'the resent copy keeps its id');
});

