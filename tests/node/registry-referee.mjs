// The referee of tests/integration/registry-tool.sh: Confluent's own
// Schema Registry client (@confluentinc/schemaregistry) reads back what
// `tributary-registry push` registered for a catalog and checks it against
// the catalog's files:
//   - every subject is there (record: the type; topic-record: TOPIC-TYPE;
//     a resource: its path, '/' as '.', without .json), versions 1..n;
//   - a version holds the file's text, byte for byte, schemaType JSON, also
//     when fetched by its id; for an event type it is the latest version;
//   - its references are the catalog files it $refs (name: their $id), at
//     the versions that hold their text;
//   - Confluent's JSON Schema serializer, using the latest version with its
//     references, accepts a valid example.order.placed and refuses one that
//     breaks the referenced order line schema.
//
//   REGISTRY_URL=... REGISTRY_USER_INFO=user:pass node registry-referee.mjs CATALOG record|topic-record [TOPIC]
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import assert from 'node:assert/strict';
import { SchemaRegistryClient, JsonSerializer, SerdeType } from '@confluentinc/schemaregistry';

const [catalogPath, strategy, topic] = process.argv.slice(2);
const client = new SchemaRegistryClient({
  baseURLs: [process.env.REGISTRY_URL],
  basicAuthCredentials: { credentialsSource: 'USER_INFO', userInfo: process.env.REGISTRY_USER_INFO },
});
const catalog = JSON.parse(readFileSync(catalogPath, 'utf8'));
const dir = dirname(catalogPath);

const files = [];
for (const [type, path] of Object.entries(catalog.types))
  files.push({ type, path, subject: strategy === 'topic-record' ? `${topic}-${type}` : type });
for (const path of catalog.resources || [])
  files.push({ path, subject: path.replace(/\.json$/, '').replaceAll('/', '.') });
for (const f of files) {
  f.text = readFileSync(join(dir, f.path), 'utf8');
  f.id = JSON.parse(f.text).$id;
}
const byId = new Map(files.map((f) => [f.id, f]));

// The catalog files a schema $refs, by their $id.
function refsOf(text, base) {
  const out = new Set();
  JSON.stringify(JSON.parse(text), (k, v) => {
    if (k === '$ref' && typeof v === 'string') {
      const abs = new URL(v, base).href.replace(/#.*$/, '');
      if (byId.has(abs) && abs !== base) out.add(abs);
    }
    return v;
  });
  return [...out];
}

// The version of f's subject that holds f's text (the latest for an event
// type's subject; a resource's may have moved on since).
async function versionOf(f) {
  if (f.match) return f.match;
  const versions = await client.getAllVersions(f.subject);
  assert.deepEqual(versions, Array.from({ length: versions.length }, (_, i) => i + 1), `${f.subject}: versions`);
  for (const v of versions.reverse()) {
    const md = await client.getSchemaMetadata(f.subject, v);
    if (md.schema === f.text) return (f.match = md);
  }
  assert.fail(`${f.subject}: no version holds the text of ${f.path}`);
}

const subjects = await client.getAllSubjects();
for (const f of files) {
  assert.ok(subjects.includes(f.subject), `subject ${f.subject} missing from ${JSON.stringify(subjects)}`);
  const md = await versionOf(f);
  if (f.type) {
    const latest = await client.getLatestSchemaMetadata(f.subject);
    assert.equal(latest.version, md.version, `${f.subject}: the latest version is not the catalog's`);
  }
  assert.equal(md.schemaType, 'JSON', `${f.subject}: schemaType`);
  const byIdInfo = await client.getBySubjectAndId(f.subject, md.id);
  assert.equal(byIdInfo.schema, f.text, `${f.subject}: GET /schemas/ids/${md.id}`);
  const want = [];
  for (const id of refsOf(f.text, f.id)) {
    const g = byId.get(id);
    want.push({ name: id, subject: g.subject, version: (await versionOf(g)).version });
  }
  const got = (md.references || []).map(({ name, subject, version }) => ({ name, subject, version }));
  assert.deepEqual(got, want, `${f.subject}: references`);
  console.log(`ok ${f.subject} version ${md.version} id ${md.id}, ${got.length} reference(s)`);
}

// Confluent's serializer resolves the references from the registry.
const placed = files.find((f) => f.type === 'example.order.placed');
if (placed) {
  const ser = new JsonSerializer(client, SerdeType.VALUE, {
    useLatestVersion: true,
    autoRegisterSchemas: false,
    validate: true,
    // Its Ajv knows no "uuid" format; formats are not what is refereed here.
    validateFormats: false,
    subjectNameStrategy: () => placed.subject,
  });
  const order = {
    orderId: '0b0f0a44-6f1e-4a5a-9d55-7a0f6b7c8d9e',
    customerId: 'c-1',
    lines: [{ sku: 'A-1', qty: 2 }],
    total: 10,
    currency: 'EUR',
  };
  const buf = await ser.serialize('events.order', order);
  assert.equal(buf[0], 0, 'magic byte');
  assert.equal(buf.readInt32BE(1), placed.match.id, 'schema id in the wire format');
  await assert.rejects(
    ser.serialize('events.order', { ...order, lines: [{ sku: 'A-1', qty: 0 }] }),
    /qty|minimum|validat/i,
    'the serializer accepted an order line the referenced schema forbids',
  );
  console.log('ok the JSON Schema serializer resolves the references');
}
