// tests/integration/registry-decode.sh: records in a Schema Registry's
// wire format (magic byte 0, schema id, payload) written by Confluent's own
// serializers (@confluentinc/schemaregistry) and by the plugin's
// `value_format: confluent`, read back as JSON by MQTT subscribers through
// outbound routes that name the registry and by SSE clients of nginx
// (tributary_stream_registry; docs/registry.md). One phase per run:
//
//   register  the schema of the plugin's route (before the broker starts)
//   mqtt   JSON Schema and Avro records, an undecodable one between good
//          ones, the plugin's own records (binary and structured routes):
//          every MQTT payload compared with the original JSON
//   sse    the SSE clients' events (stream-client.mjs, $OUT_DIR/sse-*.jsonl)
//          compared with what the mqtt phase sent
//   held   writes $OUT_DIR/held1.bin (a schema id never asked for yet) and
//          held2.bin (a cached one) for the shell, which produces them
//          while the registry is down
//
//   REGISTRY_URL=... OUT_DIR=... node registry-outbound.mjs PHASE
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { SchemaRegistryClient, JsonSerializer, AvroSerializer, SerdeType } from '@confluentinc/schemaregistry';
import { connect, subscribe, publish, collect, waitFor, env } from './lib.mjs';

const sr = new SchemaRegistryClient({ baseURLs: [process.env.REGISTRY_URL] });

const reading = {
  type: 'object', required: ['sensor', 'value'],
  properties: { sensor: { type: 'string' }, value: { type: 'number' }, tags: { type: 'array', items: { type: 'string' } } },
};
const avroReading = {
  type: 'record', name: 'Reading', namespace: 'example.rego',
  fields: [
    { name: 'sensor', type: 'string' },
    { name: 'value', type: 'double' },
    { name: 'count', type: 'long' },
    { name: 'note', type: ['null', 'string'], default: null },
    { name: 'unit', type: { type: 'enum', name: 'Unit', symbols: ['C', 'F'] } },
    { name: 'tags', type: { type: 'array', items: 'string' } },
  ],
};

// One kcat run, one record per file: binary-safe, in order.
function produceFiles(topic, key, buffers) {
  const files = buffers.map((b, i) => {
    const f = `${process.env.OUT_DIR}/rec-${topic}-${key}-${i}.bin`;
    writeFileSync(f, b);
    return f;
  });
  return new Promise((resolve, reject) => {
    const p = spawn('kcat', ['-q', '-b', env.kafka, '-P', '-t', topic, '-k', key, '-X', 'linger.ms=1', ...files],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`kcat: ${err}`))));
  });
}

// Confluent's JsonSerializer, the subject TOPIC-value registered first.
async function jsonRecord(topic, v, schema = reading) {
  await sr.register(`${topic}-value`, { schemaType: 'JSON', schema: JSON.stringify(schema) });
  const s = new JsonSerializer(sr, SerdeType.VALUE, { useLatestVersion: true, autoRegisterSchemas: false, validate: true });
  return s.serialize(topic, v);
}

async function mqttPhase() {
  const c = await connect({ protocolVersion: 5 });
  const got = collect(c, 'sandbox/rego/#');
  await subscribe(c, 'sandbox/rego/#');
  const byTopic = (t) => got.filter((m) => m.topic === t);

  // JSON Schema, Confluent's JsonSerializer; a record that is not in the
  // wire format and one with an id the registry does not know between them
  const j1 = { sensor: 's-1', value: 20.5, tags: ['a'] };
  const j2 = { sensor: 's-2', value: -3 };
  const b1 = await jsonRecord('rego.json', j1);
  const b2 = await jsonRecord('rego.json', j2);
  assert.equal(b1[0], 0, 'magic byte');
  const unknownId = Buffer.concat([Buffer.from([0, 0, 0, 0x7f, 0x7f]), Buffer.from('{"x":1}')]);
  await produceFiles('rego.json', 'k1', [b1, Buffer.from('{"not":"wire format"}'), unknownId, b2]);
  await waitFor(() => byTopic('sandbox/rego/json/k1').length >= 2, 10000, 'two JSON Schema records');
  const expect = { json: [j1, j2] };
  const jm = byTopic('sandbox/rego/json/k1');
  assert.deepEqual(jm.map((m) => JSON.parse(m.payload.toString())), [j1, j2], 'JSON records, in order');
  console.log('ok JSON Schema records (Confluent JsonSerializer) arrive as their JSON, in order');

  {
    const a1 = { sensor: 's-1', value: 1.5, count: 2 ** 40, note: 'hot', unit: 'F', tags: ['x', 'y'] };
    const a2 = { sensor: 's-2', value: 0, count: -1, note: null, unit: 'C', tags: [] };
    await sr.register('rego.avro-value', { schemaType: 'AVRO', schema: JSON.stringify(avroReading) });
    const s = new AvroSerializer(sr, SerdeType.VALUE, { useLatestVersion: true, autoRegisterSchemas: false });
    const b = await s.serialize('rego.avro', a1);
    // between them, one cut short: not a value of the schema (undecodable)
    const bufs = [b, b.subarray(0, b.length - 3), await s.serialize('rego.avro', a2)];
    await produceFiles('rego.avro', 'k2', bufs);
    await waitFor(() => byTopic('sandbox/rego/avro/k2').length >= 2, 10000, 'two Avro records');
    const am = byTopic('sandbox/rego/avro/k2').map((m) => JSON.parse(m.payload.toString()));
    // the Avro JSON encoding: a union's non-null value under its branch
    expect.avro = [{ ...a1, note: { string: 'hot' } }, a2];
    assert.deepEqual(am, expect.avro, 'Avro records, in order');
    for (const m of byTopic('sandbox/rego/avro/k2'))
      assert.equal(m.packet.properties?.contentType, undefined, 'no content type for a plain record');
    console.log('ok Avro records (Confluent AvroSerializer) arrive as their JSON encoding, in order');
  }

  // The plugin's own confluent records: binary route (data + properties)
  // and structured route (a CloudEvents document)
  // (rego.plugin-value: registered by the shell before the broker started)
  const ev = (type, data) => ({ specversion: '1.0', id: randomUUID(), source: 'urn:test:rego', type, data });
  const e1 = ev('example.rego.reading', { sensor: 'p-1', value: 7 });
  const e2 = ev('example.rego.structured', { sensor: 'p-2', value: 8, tags: ['z'] });
  for (const e of [e1, e2])
    assert.equal(await publish(c, 'events/rego/p1', JSON.stringify(e)), 0, `the plugin refused ${e.type}`);
  await waitFor(() => byTopic('sandbox/rego/plugin/p1').length >= 1 && byTopic('sandbox/rego/structured/p1').length >= 1,
    10000, 'the plugin\'s records');
  const pm = byTopic('sandbox/rego/plugin/p1')[0];
  assert.deepEqual(JSON.parse(pm.payload.toString()), e1.data, 'binary route: the data');
  const up = pm.packet.properties?.userProperties || {};
  assert.equal(up.type, e1.type, 'binary route: the type as a user property');
  assert.equal(up.id, e1.id, 'binary route: the id as a user property');
  const sm = JSON.parse(byTopic('sandbox/rego/structured/p1')[0].payload.toString());
  assert.equal(sm.id, e2.id, 'structured route: the event');
  assert.deepEqual(sm.data, e2.data, 'structured route: the data as JSON');
  console.log('ok the plugin\'s confluent records arrive as their data (binary) and as CloudEvents (structured)');
  expect.plugin = [e1, e2];
  writeFileSync(`${process.env.OUT_DIR}/expect.json`, JSON.stringify(expect));
  c.end(true);
  return expect;
}

// The SSE clients' events: plain records' data is the JSON itself, the
// plugin's records are CloudEvents with their data as JSON.
async function ssePhase(expect) {
  const events = (name) => readFileSync(`${process.env.OUT_DIR}/sse-${name}.jsonl`, 'utf8')
    .split('\n').filter(Boolean).map((l) => JSON.parse(l));
  await waitFor(() => ['json', 'avro', 'plugin', 'ws-avro'].every((n) => events(n).length >= 2), 10000, 'the SSE and WebSocket events');
  // a WebSocket frame is the event object: a plain record's data as JSON
  assert.deepEqual(events('ws-avro').map((e) => e.data), expect.avro, 'WebSocket: Avro records');
  assert.deepEqual(events('json').map((e) => JSON.parse(e.data)), expect.json, 'SSE: JSON Schema records');
  assert.deepEqual(events('avro').map((e) => JSON.parse(e.data)), expect.avro, 'SSE: Avro records');
  const pe = events('plugin');
  assert.deepEqual(pe.map((e) => e.type), expect.plugin.map((e) => e.type), 'SSE: event types');
  for (const [i, e] of pe.entries()) {
    const ce = JSON.parse(e.data);
    assert.equal(ce.id, expect.plugin[i].id, 'SSE: the event');
    assert.deepEqual(ce.data, expect.plugin[i].data, 'SSE: the data as JSON');
    assert.equal(ce.datacontenttype, 'application/json', 'SSE: datacontenttype');
  }
  console.log('ok SSE and WebSocket clients get the same records as JSON, in order');
}

async function heldPhase() {
  const h1 = { sensor: 'held-1', value: 1 };
  const h2 = { sensor: 'held-2', value: 2 };
  const heldSchema = { ...reading, title: 'held' };
  await sr.register('rego.held-value', { schemaType: 'JSON', schema: JSON.stringify(heldSchema) });
  const s = new JsonSerializer(sr, SerdeType.VALUE, { useLatestVersion: true, autoRegisterSchemas: false });
  writeFileSync(`${process.env.OUT_DIR}/held1.bin`, await s.serialize('rego.held', h1));
  assert.notEqual((await s.serialize('rego.held', h1)).readInt32BE(1), (await jsonRecord('rego.json', h2)).readInt32BE(1), 'two schema ids');
  writeFileSync(`${process.env.OUT_DIR}/held2.bin`, await jsonRecord('rego.json', h2));
  writeFileSync(`${process.env.OUT_DIR}/held.want`, `${JSON.stringify(h1)}\n${JSON.stringify(h2)}\n`);
}

await ssePhase(await mqttPhase());
await heldPhase();
process.exit(0);
