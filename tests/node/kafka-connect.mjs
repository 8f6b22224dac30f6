// Kafka Connect reads our topics (tests/integration/kafka-connect.sh):
//   node kafka-connect.mjs publish EXPECTED.json
//     publishes events with mqtt.js (MQTT 5): accepted ones on the binary-mode
//     route (events/order/{id} -> events.order) and the structured-mode one
//     (audit/order/{id} -> audit.order), refused ones that must get 0x87;
//     writes what was accepted, in publish order, to EXPECTED.json.
//   node kafka-connect.mjs check EXPECTED.json DIR
//     compares the FileStreamSink files in DIR with it: exactly the accepted
//     events, none missing, none extra, none different, in per-key order.
import { readFileSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { connect, publish, orderPlaced } from './lib.mjs';

const NOT_AUTHORIZED = 0x87;

async function publishAll(out) {
  const c = await connect({ protocolVersion: 5 });
  const accepted = { binary: [], structured: [] };
  const send = async (topic, ev, want) => {
    const payload = typeof ev === 'string' ? ev : JSON.stringify(ev);
    const rc = await publish(c, topic, payload, { qos: 1 });
    assert.equal(rc, want, `PUBACK reason for ${topic} ${payload.slice(0, 80)}`);
  };
  // Three orders, several events each (per-key order is checked), their
  // publishes interleaved across the topic's partitions; numbers written
  // as integers, decimals and exponents, strings with JSON escapes.
  const orders = [randomUUID(), randomUUID(), randomUUID()];
  let n = 0;
  for (let round = 0; round < 3; round++) {
    for (const orderId of orders) {
      n++;
      const ev = orderPlaced({}, {
        orderId,
        customerId: `customer-${n}-\u00e9\u4e2d-"q"`,
        lines: Array.from({ length: 1 + (n % 3) }, (_, i) => ({ sku: `SKU-${n}-${i}`, qty: i + 1 })),
        total: [19.99, 20, 0.5, 1234567][n % 4],
        currency: 'EUR',
      });
      await send(`events/order/${orderId}`, ev, 0);
      accepted.binary.push({ key: orderId, id: ev.id, data: ev.data });
    }
  }
  // Refused: each must reach neither Kafka nor the sink.
  const refusedId = randomUUID();
  await send(`events/order/${refusedId}`, orderPlaced({}, { orderId: refusedId, lines: [{ sku: 'BAD', qty: 0 }] }), NOT_AUTHORIZED);
  const noCurrency = orderPlaced({}, { orderId: refusedId });
  delete noCurrency.data.currency;
  await send(`events/order/${refusedId}`, noCurrency, NOT_AUTHORIZED);
  await send(`events/order/${refusedId}`, orderPlaced({ type: 'other.thing.happened' }, { orderId: refusedId }), NOT_AUTHORIZED);
  await send(`events/order/${refusedId}`, '{"specversion":"1.0", not json', NOT_AUTHORIZED);
  await send(`events/order/${refusedId}`, orderPlaced({ specversion: '0.3' }, { orderId: refusedId }), NOT_AUTHORIZED);
  // The structured-mode route: the record's value is the whole event.
  for (let i = 0; i < 2; i++) {
    const orderId = randomUUID();
    const ev = orderPlaced({ subject: `order ${i}` }, { orderId, total: 7.25 + i });
    await send(`audit/order/${orderId}`, ev, 0);
    accepted.structured.push({ key: orderId, event: ev });
  }
  await send(`audit/order/${refusedId}`, orderPlaced({}, { orderId: refusedId, lines: [] }), NOT_AUTHORIZED);
  await new Promise((r) => c.end(false, {}, r));
  writeFileSync(out, JSON.stringify({ ...accepted, refusedId }));
  console.log(`published ${accepted.binary.length} + ${accepted.structured.length} accepted events, 6 refused`);
}

// Java's Map.toString / List.toString, as FileStreamSink writes a value that
// JsonConverter (schemas.enable=false) made: {k=v, k2=[a, b]}, scalars bare.
// Parsed into objects, arrays and scalar strings; unambiguous only if no
// key or string holds ", ", "=", a bracket or a brace: checkUnambiguous().
function parseJavaToString(text) {
  let i = 0;
  const fail = (what) => { throw new Error(`not a Java Map/List toString (${what} at ${i}): ${text}`); };
  const scalar = (stops) => {
    const start = i;
    while (i < text.length && !stops.includes(text[i])) i++;
    return text.slice(start, i);
  };
  const value = (stops) => {
    if (text[i] === '{') {
      i++;
      const o = {};
      if (text[i] === '}') { i++; return o; }
      for (;;) {
        const k = scalar('=');
        if (text[i++] !== '=') fail('=');
        if (k in o) fail(`duplicate key ${k}`);
        o[k] = value(',}');
        if (text[i] === '}') { i++; return o; }
        if (text.slice(i, i + 2) !== ', ') fail('", "');
        i += 2;
      }
    }
    if (text[i] === '[') {
      i++;
      const a = [];
      if (text[i] === ']') { i++; return a; }
      for (;;) {
        a.push(value(',]'));
        if (text[i] === ']') { i++; return a; }
        if (text.slice(i, i + 2) !== ', ') fail('", "');
        i += 2;
      }
    }
    return scalar(stops);
  };
  const v = value('');
  if (i !== text.length) fail('trailing text');
  return v;
}

function checkUnambiguous(v, path = '') {
  if (typeof v === 'string') {
    assert.ok(!/, |[={}[\]]/.test(v), `test data ${path} would make Map.toString ambiguous: ${v}`);
  } else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) { checkUnambiguous(k, path); checkUnambiguous(x, `${path}/${k}`); }
  }
}

// The parsed toString `got` against the JSON value `want`, the scalar's type
// taken from `want`: a JSON number becomes a Long or a Double in Connect
// (20, 19.99; 1e3 is written 1000.0), compared as numbers; true, false and
// null as words.
function sameAsJava(got, want, path = '') {
  if (Array.isArray(want)) {
    assert.ok(Array.isArray(got), `${path}: a list expected, got ${JSON.stringify(got)}`);
    assert.equal(got.length, want.length, `${path}: list length`);
    want.forEach((w, i) => sameAsJava(got[i], w, `${path}/${i}`));
  } else if (want && typeof want === 'object') {
    assert.ok(got && typeof got === 'object' && !Array.isArray(got), `${path}: a map expected, got ${JSON.stringify(got)}`);
    assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${path}: keys`);
    for (const k of Object.keys(want)) sameAsJava(got[k], want[k], `${path}/${k}`);
  } else if (typeof want === 'number') {
    assert.ok(/^-?[0-9.]+(E-?[0-9]+)?$/.test(got) && Number(got) === want, `${path}: ${got} is not the number ${want}`);
  } else {
    assert.equal(got, String(want), `${path}`);
  }
}

const lines = (file) => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

// The file's values in file order, grouped by key: each key's own sequence
// must be the publish order (Kafka keeps order per partition, so per key).
function assertSameGrouped(fileValues, expected, keyOf, compare, what) {
  assert.equal(fileValues.length, expected.length,
    `${what}: ${fileValues.length} lines in the file, ${expected.length} events accepted`);
  const byKey = new Map();
  for (const e of expected) {
    if (!byKey.has(e.key)) byKey.set(e.key, []);
    byKey.get(e.key).push(e);
  }
  for (const v of fileValues) {
    const k = keyOf(v);
    const queue = byKey.get(k);
    assert.ok(queue && queue.length, `${what}: a value no accepted event had (or one too many for its key): ${JSON.stringify(v)}`);
    compare(v, queue.shift(), what);
  }
}

function check(expectedFile, dir) {
  const exp = JSON.parse(readFileSync(expectedFile, 'utf8'));
  const refused = (v) => JSON.stringify(v).includes(exp.refusedId);

  // Binary mode through StringConverter: the data's JSON text, as written.
  const raw = lines(`${dir}/order-raw.txt`);
  assert.ok(!raw.some(refused), 'a refused event reached the sink');
  assertSameGrouped(raw, exp.binary, (l) => JSON.parse(l).orderId,
    (l, e, what) => assert.equal(l, JSON.stringify(e.data), `${what}: the value is the data's JSON text`),
    'events.order, StringConverter');

  // Binary mode through JsonConverter: the data as a Connect map.
  exp.binary.forEach((e) => checkUnambiguous(e.data));
  const maps = lines(`${dir}/order-json.txt`);
  assert.ok(!maps.some(refused), 'a refused event reached the sink');
  assertSameGrouped(maps.map(parseJavaToString), exp.binary, (m) => m.orderId,
    (m, e, what) => sameAsJava(m, e.data, what), 'events.order, JsonConverter');

  // Structured mode through JsonConverter: the whole event as a map; its
  // attributes are the client's, plus those the plugin stamps.
  exp.structured.forEach((e) => checkUnambiguous(e.event));
  const events = lines(`${dir}/audit-json.txt`).map(parseJavaToString);
  assert.ok(!events.some(refused), 'a refused event reached the sink');
  assertSameGrouped(events, exp.structured, (m) => m.data && m.data.orderId, (m, e, what) => {
    const stamped = ['authtype', 'authid', 'time'];
    for (const k of Object.keys(m)) assert.ok(k in e.event || stamped.includes(k), `${what}: attribute ${k}`);
    sameAsJava(Object.fromEntries(Object.keys(e.event).map((k) => [k, m[k]])), e.event, what);
  }, 'audit.order, JsonConverter');
  console.log(`the sink files hold exactly the ${exp.binary.length} + ${exp.structured.length} accepted events`);
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'publish') await publishAll(args[0]);
else if (mode === 'check') check(args[0], args[1]);
else throw new Error('usage: kafka-connect.mjs publish OUT | check EXPECTED DIR');
