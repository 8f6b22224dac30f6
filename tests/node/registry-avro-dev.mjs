// tests/integration/registry-tool.sh: the dev registry's Avro
// (docs/registry.md), with Confluent's own client as the referee: an Avro
// schema registered, looked up and read back; an invalid one and a
// Protobuf one refused 42201; compatibility by the Avro resolution rules
// under BACKWARD, FORWARD and FULL; Confluent's Avro serializer and
// deserializer round-tripping a value through the registry.
//
//   REGISTRY_URL=... REGISTRY_USER_INFO=user:pass node registry-avro-dev.mjs
import assert from 'node:assert/strict';
import {
  SchemaRegistryClient, AvroSerializer, AvroDeserializer, SerdeType,
} from '@confluentinc/schemaregistry';

const sr = new SchemaRegistryClient({
  baseURLs: [process.env.REGISTRY_URL],
  basicAuthCredentials: { credentialsSource: 'USER_INFO', userInfo: process.env.REGISTRY_USER_INFO },
});
const avro = (schema) => ({ schemaType: 'AVRO', schema: JSON.stringify(schema) });
const rec = (fields, name = 'Order') => ({ type: 'record', name, namespace: 'com.example', fields });
const v1 = rec([{ name: 'id', type: 'string' }, { name: 'qty', type: 'int' },
  { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B'] } }]);
const withField = (s, f) => ({ ...s, fields: [...s.fields, f] });
const without = (s, name) => ({ ...s, fields: s.fields.filter((f) => f.name !== name) });

async function refused(p, code, what) {
  await assert.rejects(p, (e) => {
    assert.equal(e.errorCode ?? e.status, code, `${what}: ${e.message}`);
    return true;
  }, what);
}

// Registered, looked up, read back (Confluent's answers omit schemaType for Avro).
const id = await sr.register('avro.order', avro(v1));
assert.equal(await sr.getId('avro.order', avro(v1)), id);
const latest = await sr.getLatestSchemaMetadata('avro.order');
assert.equal(latest.version, 1);
assert.deepEqual(JSON.parse(latest.schema), v1);
assert.ok(latest.schemaType === undefined || latest.schemaType === 'AVRO', latest.schemaType);
assert.deepEqual(JSON.parse((await sr.getBySubjectAndId('avro.order', id)).schema), v1);
assert.equal(await sr.register('avro.order', avro(v1)), id, 'the same schema again: its id');
// A primitive schema is a JSON string, not an object.
const idStr = await sr.register('avro.str', avro('string'));
assert.equal(await sr.getId('avro.str', avro('string')), idStr);

await refused(sr.register('avro.bad', avro({ type: 'record', name: 'X' })), 42201, 'a record without fields');
await refused(sr.register('avro.bad', avro({ type: 'nope' })), 42201, 'an unknown type');
await refused(sr.register('avro.bad', { schemaType: 'AVRO', schema: '{"type": ' }), 42201, 'not JSON');
await refused(sr.register('avro.bad', { schemaType: 'PROTOBUF', schema: 'syntax = "proto3";' }), 42201, 'Protobuf');

// BACKWARD (the default): the new schema reads data of the latest.
const newReq = withField(v1, { name: 'note', type: 'string' });
const newDef = withField(v1, { name: 'note', type: ['null', 'string'], default: null });
const qtyLong = { ...v1, fields: v1.fields.map((f) => (f.name === 'qty' ? { ...f, type: 'long' } : f)) };
const enumNarrow = { ...v1, fields: v1.fields.map((f) => (f.name === 'kind' ? { ...f, type: { type: 'enum', name: 'Kind', symbols: ['A'] } } : f)) };
assert.equal(await sr.testSubjectCompatibility('avro.order', avro(newReq)), false, 'BACKWARD: a new field without default');
assert.equal(await sr.testSubjectCompatibility('avro.order', avro(enumNarrow)), false, 'BACKWARD: an enum symbol dropped');
assert.equal(await sr.testSubjectCompatibility('avro.order', avro(without(v1, 'qty'))), true, 'BACKWARD: a field dropped');
assert.equal(await sr.testSubjectCompatibility('avro.order', avro(qtyLong)), true, 'BACKWARD: int promoted to long');
assert.equal(await sr.testSubjectCompatibility('avro.order', avro('string')), false, 'BACKWARD: a record turned string');
await refused(sr.register('avro.order', avro(newReq)), 409, 'BACKWARD: register a new field without default');
await sr.register('avro.order', avro(newDef));
assert.deepEqual(await sr.getAllVersions('avro.order'), [1, 2]);

// FORWARD: the latest reads data of the new schema.
await sr.register('avro.fwd', avro(v1));
await sr.updateConfig('avro.fwd', { compatibility: 'FORWARD' });
assert.equal(await sr.testSubjectCompatibility('avro.fwd', avro(without(v1, 'qty'))), false, 'FORWARD: a field dropped');
assert.equal(await sr.testSubjectCompatibility('avro.fwd', avro(newReq)), true, 'FORWARD: a new field');
assert.equal(await sr.testSubjectCompatibility('avro.fwd', avro(qtyLong)), false, 'FORWARD: int to long');
// FULL: both ways.
await sr.register('avro.full', avro(v1));
await sr.updateConfig('avro.full', { compatibility: 'FULL' });
assert.equal(await sr.testSubjectCompatibility('avro.full', avro(newReq)), false, 'FULL: a new field without default');
assert.equal(await sr.testSubjectCompatibility('avro.full', avro(newDef)), true, 'FULL: a new field with default');
// FULL_TRANSITIVE: against every version, not only the latest.
await sr.register('avro.trans', avro(v1));
await sr.updateConfig('avro.trans', { compatibility: 'NONE' });
await sr.register('avro.trans', avro(newDef));
await sr.updateConfig('avro.trans', { compatibility: 'BACKWARD_TRANSITIVE' });
const v3 = withField(v1, { name: 'note', type: ['null', 'string'] }); // no default
assert.equal(await sr.testSubjectCompatibility('avro.trans', avro(v3)), false, 'BACKWARD_TRANSITIVE: version 1 lacks note');
await sr.updateConfig('avro.trans', { compatibility: 'BACKWARD' });
assert.equal(await sr.testSubjectCompatibility('avro.trans', avro(v3)), true, 'BACKWARD: version 2 has note');

// Confluent's serializer and deserializer through this registry.
const ser = new AvroSerializer(sr, SerdeType.VALUE, { useLatestVersion: true });
const des = new AvroDeserializer(sr, SerdeType.VALUE, {});
const value = { id: 'o-1', qty: 3, kind: 'B', note: 'hi' };
const serdeId = await sr.register('avro.serde-value', avro(newDef)); // TopicNameStrategy
assert.equal(serdeId, await sr.getId('avro.order', avro(newDef)), 'one schema, one id across subjects');
const bytes = await ser.serialize('avro.serde', value);
assert.equal(bytes.readUInt32BE(1), serdeId);
assert.deepEqual({ ...(await des.deserialize('avro.serde', bytes)) }, value);
console.log('dev registry Avro: register, lookup, 42201, BACKWARD/FORWARD/FULL/TRANSITIVE, serde round trip');
