// Helpers for the outbound (Kafka -> MQTT) tests: producing records with
// kcat (per-record headers, binary-safe delimiters) and reading the plugin's
// $SYS counters.
import { spawn } from 'node:child_process';
import { connect, subscribe, env, waitFor } from './lib.mjs';

// Produces records to `topic`, one kcat run per distinct header set:
// records = [{ key, value, headers: {name: value} }]. Values and keys may be
// Buffers (any bytes but the 0x1e / 0x1f delimiters).
export async function produce(topic, records) {
  const groups = new Map();
  for (const r of records) {
    const k = JSON.stringify(r.headers || {});
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(r);
  }
  for (const [hk, recs] of groups) {
    await kcatProduce(topic, JSON.parse(hk), recs);
  }
}

function kcatProduce(topic, headers, recs) {
  return new Promise((resolve, reject) => {
    const args = ['-q', '-b', env.kafka, '-P', '-t', topic, '-D', '\\x1e', '-K', '\\x1f', '-X', 'linger.ms=1'];
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
    const p = spawn('kcat', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let errText = '';
    p.stderr.on('data', (d) => (errText += d));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`kcat produce ${topic}: ${errText}`))));
    const parts = [];
    for (const r of recs) {
      parts.push(Buffer.from(r.key === undefined ? '' : r.key), Buffer.from([0x1f]),
        Buffer.from(r.value === undefined ? '' : r.value), Buffer.from([0x1e]));
    }
    p.stdin.end(Buffer.concat(parts));
  });
}

// Reads the retained $SYS/tributary/outbound/NAME counter.
export async function sysCounter(name) {
  const c = await connect({ protocolVersion: 5 });
  try {
    const value = new Promise((resolve) => {
      c.on('message', (t, payload) => resolve(Number(payload.toString())));
    });
    await subscribe(c, `$SYS/tributary/outbound/${name}`, { qos: 0 });
    return await Promise.race([value, new Promise((_, rej) => setTimeout(() => rej(new Error(`no $SYS ${name}`)), 5000))]);
  } finally {
    c.end(true);
  }
}

// Waits until counter NAME reaches at least `min` ($SYS is published every second).
export async function waitCounter(name, min, timeoutMs = 10000) {
  let last;
  await waitFor(async () => (last = await sysCounter(name)) >= min, timeoutMs, `$SYS outbound/${name} >= ${min} (last ${last})`);
  return last;
}

// User properties of a v5 PUBLISH as [[name, value], ...] in order.
export function userProps(packet) {
  const up = (packet.properties && packet.properties.userProperties) || {};
  const out = [];
  for (const [k, v] of Object.entries(up)) {
    for (const x of Array.isArray(v) ? v : [v]) out.push([k, x]);
  }
  return out;
}
