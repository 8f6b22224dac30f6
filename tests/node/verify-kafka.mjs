// Checks that Kafka holds every acknowledged event (from pubload.mjs files):
//   node tests/node/verify-kafka.mjs --topic events.order --acked a.jsonl[,b.jsonl]
//        [--allow-duplicates]
// Without --allow-duplicates each must be there exactly once; with it,
// duplicates are counted and reported.
// Per key, the first copies of the events must appear in publish order.
import fs from 'node:fs';
import { kafkaRecords, waitFor } from './lib.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) =>
  (v.startsWith('--') ? a.concat([[v.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : true]]) : a), []));
const acked = new Map();
for (const f of String(args.acked).split(',')) {
  for (const line of fs.readFileSync(f, 'utf8').split('\n').filter(Boolean)) {
    const a = JSON.parse(line);
    acked.set(a.id, a);
  }
}
const prefixes = new Set([...acked.keys()].map((id) => id.split('-')[0]));
let recs = [];
await waitFor(async () => {
  recs = (await kafkaRecords(args.topic, { timeoutMs: 60000 }))
    .filter((r) => r.headers.ce_id && prefixes.has(r.headers.ce_id.split('-')[0]));
  const have = new Set(recs.map((r) => r.headers.ce_id));
  return [...acked.keys()].every((id) => have.has(id));
}, Number(args.wait || 60) * 1000, 'every acknowledged event in Kafka').catch(() => {});

const copies = new Map(); // ce_id -> its records
for (const r of recs) {
  if (!copies.has(r.headers.ce_id)) copies.set(r.headers.ce_id, []);
  copies.get(r.headers.ce_id).push(r);
}
const missing = [...acked.keys()].filter((id) => !copies.has(id));
const duplicated = [...copies].filter(([, rs]) => rs.length > 1);
const dups = duplicated.reduce((a, [, rs]) => a + rs.length - 1, 0);
// Per key, in partition order, the first copy of each event: seq ascending.
const lastSeq = new Map();
let misordered = 0;
const seen = new Set();
for (const r of recs.sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
  if (seen.has(r.headers.ce_id)) continue;
  seen.add(r.headers.ce_id);
  const s = JSON.parse(r.value).total;
  if (lastSeq.has(r.key) && s < lastSeq.get(r.key)) misordered++;
  lastSeq.set(r.key, s);
}
console.log(`verify: acknowledged=${acked.size} in_kafka=${copies.size} missing=${missing.length} duplicates=${dups} misordered=${misordered}`);
// Same partition and offset twice is the reader's doing; distinct offsets
// were written twice. The mqtt_* headers tell which client sent them.
for (const [id, rs] of duplicated.slice(0, 20)) {
  console.log(`verify: duplicate ${id} (acknowledged at ${acked.get(id)?.t}): ` +
    rs.map((r) => `p${r.partition}@${r.offset} client=${r.headers.mqtt_client_id}`).join(', '));
}
if (missing.length) console.log(`verify: first missing: ${missing.slice(0, 5).join(' ')}`);
const ok = missing.length === 0 && misordered === 0 && (args['allow-duplicates'] || dups === 0);
process.exit(ok ? 0 : 1);
