// tests/integration/registry-ingest.sh: the broker validating against a
// Schema Registry (docs/registry.md). Confluent's own client
// (@confluentinc/schemaregistry) is the referee: it registers the schemas,
// and its JSON Schema deserializer decodes what the broker wrote in the
// `confluent` value format. One phase per run (the shell script stops and
// starts the registry and the broker between them):
//
//   register   the first schemas (a reference, three strategies)
//   ingest     valid/invalid, strategies, references, an unknown subject,
//              evolution, dataschema, a wrong credential
//   reloaded   after SIGHUP fixed the wrong credential: accepted
//   reloadkept after refused reloads: the previous settings serve
//   outage     the registry down: cached schemas keep working
//   downstart  the broker started while the registry was down
//   recover    ... and the registry back
//   protobuf   a Protobuf subject (written into _schemas by the script)
//   decode     every confluent-format record decoded by the deserializers
//              (JSON Schema, and Avro for the Avro subject)
//
//   REGISTRY_URL=... REGISTRY_USER_INFO=user:pass node registry-ingest.mjs PHASE
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  SchemaRegistryClient, JsonDeserializer, AvroDeserializer, SerdeType,
} from '@confluentinc/schemaregistry';
import { env, connect, subscribe, publish, collect, waitFor, sleep, kafkaRecords } from './lib.mjs';

const url = process.env.REGISTRY_URL;
const sr = new SchemaRegistryClient({
  baseURLs: [url],
  basicAuthCredentials: { credentialsSource: 'USER_INFO', userInfo: process.env.REGISTRY_USER_INFO },
});
const D7 = 'http://json-schema.org/draft-07/schema#';
const money = {
  $schema: D7, $id: 'https://example.com/schemas/money.json', type: 'object',
  required: ['amount', 'currency'],
  properties: { amount: { type: 'number', minimum: 0 }, currency: { type: 'string', pattern: '^[A-Z]{3}$' } },
};
const orderV1 = {
  $schema: D7, $id: 'https://example.com/schemas/order.json', type: 'object',
  required: ['orderId', 'total'], additionalProperties: false,
  properties: { orderId: { type: 'string' }, total: { $ref: 'money.json' } },
};
const orderV2 = structuredClone(orderV1);
orderV2.properties.note = { type: 'string' };
const orderV3 = structuredClone(orderV2);
orderV3.properties.note3 = { type: 'string' };
const moneyRef = [{ name: money.$id, subject: 'common.money', version: 1 }];
const thing = { type: 'object', required: ['n'], properties: { n: { type: 'integer', maximum: 100 } } };
const trThing = { type: 'object', required: ['s'], properties: { s: { type: 'string' } } };

// Avro: a record of every kind of field; version 2 adds one with a default.
const readingV1 = {
  type: 'record', name: 'Reading', namespace: 'com.example', fields: [
    { name: 'sensor', type: 'string' }, { name: 'value', type: 'double' }, { name: 'count', type: 'long' },
    { name: 'unit', type: { type: 'enum', name: 'Unit', symbols: ['C', 'F'] } },
    { name: 'tags', type: { type: 'map', values: 'string' } }, { name: 'samples', type: { type: 'array', items: 'int' } },
    { name: 'note', type: ['null', 'string'], default: null }, { name: 'raw', type: 'bytes' },
  ],
};
const readingV2 = { ...readingV1, fields: [...readingV1.fields, { name: 'site', type: 'string', default: 'main' }] };
const regAvro = (subject, schema) => sr.register(subject, { schemaType: 'AVRO', schema: JSON.stringify(schema) });
const reading = (extra = {}) => ({
  sensor: 's1', value: 21.5, count: 2 ** 40, unit: 'F', tags: { room: 'k\u00fcche' }, samples: [1, -2],
  raw: '\u0001\u00ff\u0080a', ...extra,
});
// The Avro events accepted, and what Confluent's deserializer must read back
// (union values unwrapped, defaults filled in), for the decode phase.
const avroSent = process.env.AVRO_SENT;
const reg = (subject, schema, references = []) =>
  sr.register(subject, { schemaType: 'JSON', schema: JSON.stringify(schema), references });
const idOf = async (subject, version) => (await sr.getSchemaMetadata(subject, version)).id;

function event(type, data, extra = {}) {
  return { specversion: '1.0', id: randomUUID(), source: 'urn:test:registry', type, ...extra, data };
}
const order = (extra = {}) => ({ orderId: randomUUID(), total: { amount: 5, currency: 'EUR' }, ...extra });

let cl;
async function client() {
  const c = await connect({ protocolVersion: 5 });
  const errors = collect(c, `clients/${c.options.clientId}/errors`);
  await subscribe(c, `clients/${c.options.clientId}/errors`);
  return { c, errors };
}
// The PUBACK reason code and, when refused, the error event's data.
async function send(topic, ev) {
  const rc = await publish(cl.c, topic, JSON.stringify(ev));
  if (rc === 0) return { rc };
  await waitFor(() => cl.errors.length > 0, 5000, `error event for ${topic}`);
  const err = JSON.parse(cl.errors.shift().payload.toString());
  return { rc, data: err.data };
}
async function accepted(topic, ev, what) {
  const r = await send(topic, ev);
  assert.equal(r.rc, 0, `${what}: refused ${JSON.stringify(r.data)}`);
}
async function refused(topic, ev, reason, what, pattern) {
  const r = await send(topic, ev);
  assert.equal(r.rc, 0x87, `${what}: accepted`);
  assert.equal(r.data.reason, reason, `${what}: ${JSON.stringify(r.data)}`);
  if (pattern) assert.match(r.data.message, pattern, what);
  return r.data;
}
// Publishes (a new event each time) until refused for `reason` (not
// schema_unavailable: still being fetched).
async function eventuallyRefused(topic, make, reason, what, pattern) {
  let last;
  await waitFor(async () => {
    last = await send(topic, make());
    assert.notEqual(last.rc, 0, `${what}: accepted`);
    return last.data.reason !== 'schema_unavailable';
  }, 10000, what);
  assert.equal(last.data.reason, reason, `${what}: ${JSON.stringify(last.data)}`);
  if (pattern) assert.match(last.data.message, pattern, what);
}
// Publishes (a new event each time) until accepted.
async function eventuallyAccepted(topic, make, what, ms = 10000) {
  let last;
  await waitFor(async () => {
    last = await send(topic, make());
    if (last.rc !== 0) assert.equal(last.data.reason, 'schema_unavailable', `${what}: ${JSON.stringify(last.data)}`);
    return last.rc === 0;
  }, ms, what);
}
async function sysValue(topic) {
  const c = await connect({ protocolVersion: 5 });
  const got = collect(c, topic);
  await subscribe(c, topic);
  await waitFor(() => got.length > 0, 5000, topic);
  c.end();
  return Number(got[got.length - 1].payload.toString());
}
function ok(msg) { console.log(`ok ${msg}`); }

const phases = {
  async register() {
    await reg('common.money', money);
    await reg('reg.orders-value', orderV1, moneyRef);
    await reg('example.thing.made', thing);
    await reg('reg.tr-example.thing.made', trThing);
    await regAvro('reg.avro-value', readingV1);
    ok('registered reg.avro-value (Avro), common.money, reg.orders-value (referencing it), example.thing.made, reg.tr-example.thing.made');
  },

  async ingest() {
    // topic strategy, with a reference
    await accepted('events/regorders/1', event('example.order.made', order()), 'valid order');
    let d = await refused('events/regorders/1', event('example.order.made', order({ total: { amount: 5, currency: 'euro' } })),
      'schema_validation_failed', 'a money the referenced schema refuses', /reg\.orders-value|order\.made/);
    assert.ok(d.errors.some((e) => e.instanceLocation === '/total/currency'), JSON.stringify(d.errors));
    d = await refused('events/regorders/1', event('example.order.made', order({ note: 'hi' })),
      'schema_validation_failed', 'a property v1 does not allow');
    assert.ok(d.errors.length >= 1 && d.errors[0].message.length > 0);
    ok('topic strategy: valid accepted, invalid refused with the validator\'s reasons (through a reference)');

    // record and topic-record strategies: the same type, two subjects
    await accepted('events/regthings/1', event('example.thing.made', { n: 7 }), 'record strategy');
    await refused('events/regthings/1', event('example.thing.made', { n: 700 }), 'schema_validation_failed', 'record: n > 100');
    await accepted('events/regtr/1', event('example.thing.made', { s: 'x' }), 'topic-record strategy');
    await refused('events/regtr/1', event('example.thing.made', { n: 7 }), 'schema_validation_failed', 'topic-record: no s');
    ok('record and topic-record strategies pick their subjects');

    // a subject registered after start: refused, fetched in the background
    await refused('events/regthings/2', event('example.late.thing', { late: true }), 'schema_unavailable',
      'unknown subject', /example\.late\.thing/);
    await reg('example.late.thing', { type: 'object', required: ['late'] });
    await eventuallyAccepted('events/regthings/2', () => event('example.late.thing', { late: true }), 'late subject');
    await refused('events/regthings/2', event('example.late.thing', {}), 'schema_validation_failed', 'late subject validates');
    ok('an unknown subject: schema_unavailable, then accepted after the background fetch');

    // evolution: version 2 used after the refresh (max_age_s 2), no restart
    const v1 = await idOf('reg.orders-value', 1);
    await reg('reg.orders-value', orderV2, moneyRef);
    const v2 = await idOf('reg.orders-value', 2);
    assert.notEqual(v1, v2);
    const t0 = Date.now();
    await waitFor(async () => (await send('events/regorders/2', event('example.order.made', order({ note: 'v2' })))).rc === 0,
      10000, 'version 2 in use');
    ok(`schema evolution: version 2 (id ${v2}) in use ${Date.now() - t0} ms after it was registered`);

    // dataschema names the version validated against: the latest, or an
    // older one (fetched in the background: schema_unavailable until then)
    const ds = (s, extra = {}) => event('example.order.made', order(extra), { dataschema: s });
    await accepted('events/regorders/3', ds(`${url}/schemas/ids/${v2}`), 'dataschema by id');
    await accepted('events/regorders/3', ds(`${url}/subjects/reg.orders-value/versions/2`), 'dataschema by version');
    const byVersion1 = `${url}/subjects/reg.orders-value/versions/1`;
    await eventuallyAccepted('events/regorders/3', () => ds(byVersion1, { orderId: 'pinv1-a' }), 'pinned version 1');
    await refused('events/regorders/3', ds(byVersion1, { note: 'v2 only' }), 'schema_validation_failed',
      'pinned version 1 validates against version 1');
    // the same version by its id: cached already
    await accepted('events/regorders/3', ds(`${url}/schemas/ids/${v1}`, { orderId: 'pinv1-b' }), 'pinned by id');
    await refused('events/regorders/3', ds(`${url}/schemas/ids/${v1}`, { note: 'v2 only' }), 'schema_validation_failed',
      'pinned by id validates against version 1');
    await eventuallyRefused('events/regorders/3', () => ds(`${url}/subjects/reg.orders-value/versions/99`), 'invalid_attribute',
      'a version that does not exist', /subject 'reg\.orders-value' has no version 99 in registry sr/);
    await eventuallyRefused('events/regorders/3', () => ds(`${url}/schemas/ids/9999`), 'invalid_attribute',
      'an id that does not exist', /registry sr has no schema id 9999/);
    const moneyId = await idOf('common.money', 1);
    await eventuallyRefused('events/regorders/3', () => ds(`${url}/schemas/ids/${moneyId}`), 'invalid_attribute',
      'the id of another subject', new RegExp(`schema id ${moneyId} of registry sr is not a version of subject 'reg\\.orders-value'`));
    await refused('events/regorders/3', ds(`${url}/subjects/common.money/versions/1`), 'invalid_attribute',
      'another subject', /names subject 'common\.money', but this event's subject is 'reg\.orders-value'/);
    await refused('events/regorders/3', ds('https://example.com/schemas/order.json'), 'invalid_attribute', 'another URL',
      /is not a schema of registry sr/);
    await refused('events/regorders/3', ds(`${url}/subjects/reg.orders-value/versions/01`), 'invalid_attribute', 'not a number');
    ok('dataschema: the latest and an older version (id and version forms) accepted and validated against; ' +
      'a missing version, an id of another subject, another URL refused invalid_attribute');

    // pinned_versions: 1 (the configuration): the versions found missing
    // above dropped nothing; a second older version drops the first, which
    // is fetched again when asked (schema_unavailable first)
    await accepted('events/regorders/3', ds(byVersion1, { orderId: 'pinv1-c' }), 'still pinned');
    await reg('reg.orders-value', orderV3, moneyRef);
    await waitFor(async () => (await send('events/regorders/3', event('example.order.made', order({ note3: 'v3' })))).rc === 0,
      10000, 'version 3 in use');
    const byVersion2 = `${url}/subjects/reg.orders-value/versions/2`;
    await eventuallyAccepted('events/regorders/3', () => ds(byVersion2, { note: 'pinned v2' }), 'pinned version 2');
    await refused('events/regorders/3', ds(byVersion2, { note3: 'v3' }), 'schema_validation_failed', 'version 2 refuses v3 data');
    const again = await send('events/regorders/3', ds(byVersion1, { orderId: 'pinv1-x' }));
    assert.equal(again.rc, 0x87, 'the older pin was dropped');
    assert.equal(again.data.reason, 'schema_unavailable', JSON.stringify(again.data));
    await eventuallyAccepted('events/regorders/3', () => ds(byVersion1, { orderId: 'pinv1-d' }), 'pinned again');
    assert.equal(await sysValue('$SYS/tributary/registry/sr/pinned'), 1);
    ok('pinned versions bounded (pinned_versions): the oldest dropped, fetched again when asked');

    // Avro: validated and encoded; refused with the encoder's reason
    const sent = [];
    let schemaId = await idOf('reg.avro-value', 1);
    const avroOk = async (data, want, what) => {
      const ev = event('example.reading', data);
      await accepted('events/regavro/1', ev, what);
      sent.push({ id: ev.id, want, schemaId });
    };
    await avroOk(reading({ note: 'bare' }), reading({ note: 'bare' }), 'Avro: a union value bare');
    await avroOk(reading({ note: { string: 'wrapped' } }), reading({ note: 'wrapped' }), 'Avro: a union value wrapped');
    await avroOk(reading(), reading({ note: null }), 'Avro: a field with its default');
    d = await refused('events/regavro/1', event('example.reading', reading({ sensor: 7 })), 'schema_validation_failed',
      'Avro: a string field given a number', /reg\.avro-value.*\/sensor: expected a string, got an integer/);
    await refused('events/regavro/1', event('example.reading', reading({ samples: [1, 2 ** 31] })), 'schema_validation_failed',
      'Avro: an int out of range', /\/samples\/1: 2147483648 is out of range for an int/);
    await refused('events/regavro/1', event('example.reading', reading({ unit: 'K' })), 'schema_validation_failed',
      'Avro: not an enum symbol', /\/unit: "K" is not a symbol of enum com\.example\.Unit/);
    await refused('events/regavro/1', event('example.reading', reading({ site: 'b' })), 'schema_validation_failed',
      'Avro: a field version 1 does not have', /\/site: not a field of record com\.example\.Reading/);
    await refused('events/regavro/1', event('example.reading', reading({ raw: '\u0100' })), 'schema_validation_failed',
      'Avro: bytes beyond U+00FF', /\/raw: expected bytes/);
    await refused('events/regavro/1', event('example.reading', undefined), 'schema_validation_failed',
      'Avro: an event without data', /\/: expected record com\.example\.Reading \(an object\), got null/);
    await refused('events/regavrobin/1', event('example.reading', reading()), 'schema_unavailable',
      'Avro on a cloudevents-binary route', /Avro schema: its events need a route with value_format "confluent"/);
    ok('Avro: valid data accepted, invalid refused with the JSON path; not on a cloudevents-binary route');
    // Avro evolution: version 2 (a new field with a default) used after the refresh
    await regAvro('reg.avro-value', readingV2);
    const a2 = await idOf('reg.avro-value', 2);
    schemaId = a2;
    const t1 = Date.now();
    await waitFor(async () => {
      const ev = event('example.reading', reading({ site: 'b' }));
      const r = await send('events/regavro/2', ev);
      if (r.rc === 0) sent.push({ id: ev.id, want: reading({ site: 'b', note: null }), schemaId: a2 });
      return r.rc === 0;
    }, 10000, 'Avro version 2 in use');
    await avroOk(reading(), reading({ note: null, site: 'main' }), 'Avro v2: a new field\'s default');
    writeFileSync(avroSent, JSON.stringify(sent));
    ok(`Avro schema evolution: version 2 (id ${a2}) in use ${Date.now() - t1} ms after it was registered`);

    // a registry whose credentials are refused: nothing cached
    await refused('events/regwrongkey/1', event('example.thing.made', { n: 1 }), 'schema_unavailable', 'wrong key');
    assert.equal(await sysValue('$SYS/tributary/registry/wrongkey/outages'), 1);
    assert.ok(await sysValue('$SYS/tributary/registry/sr/schemas') >= 5);
    ok('a wrong credential: schema_unavailable, one outage counted');
  },

  async reloaded() {
    await eventuallyAccepted('events/regwrongkey/2', () => event('example.thing.made', { n: 2 }), 'credential fixed by SIGHUP');
    await refused('events/regwrongkey/2', event('example.thing.made', { n: 200 }), 'schema_validation_failed', 'after SIGHUP');
    ok('SIGHUP: the fixed credential in use, no restart');
  },

  async reloadkept() {
    await accepted('events/regorders/7', event('example.order.made', order()), 'sr kept');
    await accepted('events/regwrongkey/3', event('example.thing.made', { n: 3 }), 'wrongkey kept');
    ok('a refused reload: the previous registries keep serving');
  },

  async outage() {
    await accepted('events/regorders/4', event('example.order.made', order({ note: 'down' })), 'cached while down');
    await refused('events/regorders/4', event('example.order.made', order({ note: 1 })), 'schema_validation_failed', 'invalid while down');
    await accepted('events/regthings/4', event('example.thing.made', { n: 4 }), 'cached record subject while down');
    await refused('events/regthings/4', event('example.never.registered', {}), 'schema_unavailable', 'new subject while down');
    await sleep(2500); // a few refresh attempts (every 2 s while down)
    await accepted('events/regorders/4', event('example.order.made', order()), 'still cached');
    assert.equal(await sysValue('$SYS/tributary/registry/sr/outages'), 1, 'one outage, counted once');
    ok('registry down: cached schemas keep working, new subjects refused schema_unavailable, one outage counted');
  },

  async downstart() {
    await refused('events/regorders/5', event('example.order.made', order()), 'schema_unavailable', 'nothing cached');
    ok('started with the registry down: schema_unavailable');
  },

  async recover() {
    await eventuallyAccepted('events/regorders/6', () => event('example.order.made', order()), 'registry back');
    await refused('events/regorders/6', event('example.order.made', order({ note: 2 })), 'schema_validation_failed', 'after recovery');
    ok('registry back: its schemas loaded without a restart');
  },

  async protobuf() {
    const d = await refused('events/regproto/1', event('example.proto', { s: 'x' }), 'schema_unavailable',
      'a Protobuf subject', /reg\.proto-value.*Protobuf schema: not supported/);
    assert.ok(d.message.length > 0);
    ok('a Protobuf subject: refused schema_unavailable, saying Protobuf is not supported');
  },

  async decode() {
    // Avro: Confluent's deserializer reads every record back to the data sent.
    const ades = new AvroDeserializer(sr, SerdeType.VALUE, {});
    const sent = new Map(JSON.parse(readFileSync(avroSent, 'utf8')).map((x) => [x.id, x]));
    const avroRecs = await kafkaValues('reg.avro');
    assert.equal(avroRecs.length, sent.size, 'one record per accepted Avro event');
    for (const r of avroRecs) {
      const want = sent.get(r.headers.ce_id);
      assert.ok(want, `record ${r.headers.ce_id} was not sent`);
      assert.equal(r.value[0], 0, 'magic byte');
      assert.equal(r.value.readInt32BE(1), want.schemaId, `record ${r.headers.ce_id}: the id of the version that validated it`);
      const got = await ades.deserialize('reg.avro', r.value);
      const plain = { ...got, raw: got.raw.toString('latin1'), tags: { ...got.tags } };
      assert.deepEqual(plain, want.want, `record ${r.headers.ce_id}`);
      assert.equal(r.headers.ce_type, 'example.reading', 'ce_* headers kept');
    }
    ok(`${avroRecs.length} Avro records decoded by Confluent's AvroDeserializer to the data sent`);

    const des = new JsonDeserializer(sr, SerdeType.VALUE, { validate: true, validateFormats: false });
    const v2 = await idOf('reg.orders-value', 2);
    const v1 = await idOf('reg.orders-value', 1);
    let n = 0, pinned = 0;
    for (const [topic, subject] of [['reg.orders', 'reg.orders-value'], ['reg.things', null]]) {
      const recs = await kafkaRecords(topic);
      assert.ok(recs.length >= 3, `${topic}: ${recs.length} records`);
      for (const r of recs) {
        // kcat -J writes the bytes as a JSON string; ids here are < 128.
        const buf = Buffer.from(r.value, 'utf8');
        assert.equal(buf[0], 0, 'magic byte');
        const id = buf.readInt32BE(1);
        assert.ok(id > 0 && id < 128, `id ${id}`);
        const data = await des.deserialize(topic, buf);
        assert.deepEqual(data, JSON.parse(buf.subarray(5).toString()));
        assert.equal(r.headers.ce_specversion, '1.0', 'ce_* headers kept');
        if (subject && data.note === 'v2') assert.equal(id, v2, 'evolved records carry version 2\'s id');
        if (subject && data.orderId.startsWith('pinv1-')) { assert.equal(id, v1, 'pinned records carry version 1\'s id'); pinned++; }
        if (subject === null && r.headers.ce_type === 'example.thing.made')
          assert.equal(id, await idOf('example.thing.made', 1));
        n++;
      }
    }
    assert.equal(pinned, 4, 'the records pinned to version 1');
    ok(`${n} records in the confluent format decoded by Confluent's JSON Schema deserializer, ${pinned} with version 1's id`);
  },
};

// Every record of the topic with its value as bytes (kcat -J would mangle
// Avro's): `-f` writes each value's size before it.
function kafkaValues(topic) {
  return new Promise((resolve, reject) => {
    const p = spawn('kcat', ['-q', '-b', env.kafka, '-X', 'fetch.wait.max.ms=10', '-C', '-t', topic,
      '-o', 'beginning', '-e', '-f', '%S %s%h\n'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks = [];
    p.stdout.on('data', (c) => chunks.push(c));
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`kcat ${topic}: exit ${code}`));
      const out = Buffer.concat(chunks), recs = [];
      for (let i = 0; i < out.length;) {
        const sp = out.indexOf(0x20, i);
        const n = Number(out.subarray(i, sp).toString());
        const value = out.subarray(sp + 1, sp + 1 + n);
        const nl = out.indexOf(0x0a, sp + 1 + n);
        const headers = {};
        for (const kv of out.subarray(sp + 1 + n, nl).toString().split(',')) {
          const eq = kv.indexOf('=');
          headers[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
        recs.push({ value, headers });
        i = nl + 1;
      }
      resolve(recs);
    });
  });
}

const phase = process.argv[2];
if (!phases[phase]) throw new Error(`unknown phase ${phase}`);
if (phase !== 'register' && phase !== 'decode') cl = await client();
try {
  await phases[phase]();
} finally {
  if (cl) cl.c.end();
}
