// Publishes example.order.placed events at a fixed rate (QoS 1) and records
// every acknowledged one: the ground truth for the fault tests.
//   node tests/node/pubload.mjs --rate 1000 --seconds 40 --out acked.jsonl [--clients 4] [--keys 40]
// Each line of --out: {"id","key","seq","t"} (t: when acknowledged, ms) for an event whose PUBACK was 0 (a
// refusal, 0x87, is counted apart). Reconnects when the broker goes away.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import mqtt from 'mqtt';
import { env, orderPlaced, sleep } from './lib.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) =>
  (v.startsWith('--') ? a.concat([[v.slice(2), all[i + 1]]]) : a), []));
const rate = Number(args.rate || 1000), seconds = Number(args.seconds || 10);
const nclients = Number(args.clients || 4), nkeys = Number(args.keys || 40);
const out = fs.openSync(args.out || '/dev/stdout', 'w');
const run = randomUUID().slice(0, 8);
const keys = Array.from({ length: nkeys }, () => randomUUID());
let acked = 0, refused = 0, failed = 0, reconnects = 0;

const clients = Array.from({ length: nclients }, (_, i) => mqtt.connect(`mqtt://127.0.0.1:${env.mqttPort}`, {
  protocolVersion: 5, clientId: `load-${run}-${i}`, clean: false, reconnectPeriod: 200,
  properties: { sessionExpiryInterval: 3600 },
}));
await Promise.all(clients.map((c) => new Promise((r) => c.once('connect', r))));
// A reconnect resends unacknowledged QoS 1 PUBLISHes: a duplicate in Kafka
// is then the client's at-least-once, not the broker's doing.
for (const c of clients) c.on('reconnect', () => reconnects++);
// Rejections arrive as error events: count them by reason.
const reasons = {};
for (const c of clients) {
  c.subscribe(`clients/${c.options.clientId}/errors`, { qos: 1 });
  c.on('message', (topic, payload) => {
    try {
      const r = JSON.parse(payload.toString()).data.reason;
      reasons[r] = (reasons[r] || 0) + 1;
    } catch { reasons.unparsable = (reasons.unparsable || 0) + 1; }
  });
}

// Key k belongs to client k % nclients, whose publishes are ordered.
const seq = new Map(keys.map((k) => [k, 0]));
const pending = [];
const start = Date.now();
let n = 0;
while (Date.now() - start < seconds * 1000) {
  const due = start + (n * 1000) / rate;
  if (due > Date.now()) await sleep(due - Date.now());
  const ki = n % nkeys, k = keys[ki];
  const s = seq.get(k);
  seq.set(k, s + 1);
  const ev = orderPlaced({ id: `${run}-${n}` }, { orderId: k, total: s, customerId: run });
  const c = clients[ki % nclients];
  pending.push(new Promise((resolve) => {
    c.publish(`events/order/${k}`, JSON.stringify(ev), { qos: 1 }, (err, packet) => {
      if (!err && !(packet && packet.reasonCode)) {
        acked++;
        fs.writeSync(out, JSON.stringify({ id: ev.id, key: k, seq: s, t: Date.now() }) + '\n');
      } else if ((err && err.code === 0x87) || (packet && packet.reasonCode === 0x87)) refused++;
      else failed++;
      resolve();
    });
  }));
  n++;
}
await Promise.race([Promise.all(pending), sleep(120000)]);
if (refused) await sleep(500); // the last error events
console.error(`pubload: sent=${n} acked=${acked} refused=${refused} failed=${failed} reconnects=${reconnects} errors=${JSON.stringify(reasons)}`);
clients.forEach((c) => c.end(true));
process.exit(0);
