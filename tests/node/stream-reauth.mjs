// A browser stream opened with a JWT ends when the token does, and the web
// client renews it without losing a record.
//
//   node stream-reauth.mjs BASE_URL TOKEN FRESH_TOKEN LEEWAY_S
//
// TOKEN is short-lived (its exp a few seconds ahead), FRESH_TOKEN is for the
// same user. The user's records are produced with kcat (KAFKA_BOOTSTRAP,
// topic notifications, key = the token's sub). Checks:
//  - SSE (npm eventsource) and WebSocket (npm ws) opened with TOKEN get a
//    record, then, between exp + leeway and a bounded time after it, SSE the
//    event "reauthenticate" (without id: Last-Event-ID unchanged) and the
//    WebSocket close code 1008;
//  - the renewal the docs describe: a new EventSource with FRESH_TOKEN and
//    ?from=<last event id> gets the record produced in between, and not the
//    one it had already.
// Exits 0 when all hold; prints what it saw.
import { execFileSync } from 'child_process';
import EventSource from 'eventsource';
import WebSocket from 'ws';

const [base, token, fresh, leewayArg] = process.argv.slice(2);
const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url'));
const user = claims.sub;
const deadline = (claims.exp + Number(leewayArg)) * 1000;
const LATE_MS = 2500;          // the end may come this much after the deadline

const fail = (m) => { console.error(`stream-reauth: ${m}`); process.exit(1); };
setTimeout(() => fail('timeout'), deadline - Date.now() + 15000);

const produce = (value) => execFileSync('kcat', ['-b', process.env.KAFKA_BOOTSTRAP, '-P',
  '-t', 'notifications', '-K:', '-X', 'linger.ms=1'], { input: `${user}:${value}\n` });

function within(what, t) {
  if (t < deadline - 50) fail(`${what} ${deadline - t} ms before exp + leeway`);
  if (t > deadline + LATE_MS) fail(`${what} ${t - deadline} ms after exp + leeway`);
  console.log(`${what}: ${t - deadline} ms after exp + leeway`);
}

const url = `${base}/notifications?access_token=${token}`;
const es = new EventSource(url);
const ws = new WebSocket(url.replace(/^http/, 'ws'), 'cloudevents.json');
ws.on('error', (e) => fail(`ws: ${e.message}`));

const opened = Promise.all([
  new Promise((res) => { es.onopen = res; }),
  new Promise((res) => ws.on('open', res)),
]);
es.onerror = (e) => { if (e && e.status) fail(`sse: HTTP ${e.status}`); };

const sseRecord = new Promise((res) => { es.onmessage = res; });
const wsRecord = new Promise((res) => ws.once('message', (d) => res(JSON.parse(d.toString()))));
const reauth = new Promise((res) => es.addEventListener('reauthenticate', (ev) => {
  const t = Date.now();
  es.close();         // the client renews itself (next step), not with the old token
  res({ ev, t });
}));
const closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString(), t: Date.now() })));

await opened;
produce('before-expiry');
const first = await sseRecord;
const wsFirst = await wsRecord;
if (first.data !== 'before-expiry' || wsFirst.data !== 'before-expiry') {
  fail(`first record: sse ${first.data}, ws ${JSON.stringify(wsFirst)}`);
}
const lastId = first.lastEventId;
if (Date.now() > deadline) fail('the token expired before the test could start: exp too short');

const { ev, t } = await reauth;
within('sse reauthenticate', t);
if (ev.data !== 'token expired') fail(`reauthenticate data: ${ev.data}`);
if (ev.lastEventId !== lastId) fail(`reauthenticate changed the last event id: ${ev.lastEventId}`);

const c = await closed;
within('ws close', c.t);
if (c.code !== 1008 || c.reason !== 'token expired') fail(`ws close ${c.code} "${c.reason}"`);

// the renewal: a record arrives while the client has no stream
produce('while-away');
const again = new EventSource(`${base}/notifications?access_token=${fresh}&from=${encodeURIComponent(lastId)}`);
again.onerror = (e) => { if (e && e.status) fail(`renewed sse: HTTP ${e.status}`); };
const next = await new Promise((res) => { again.onmessage = res; });
again.close();
if (next.data !== 'while-away') fail(`after renewal the first record is ${next.data}, not while-away`);
console.log('renewed with from=' + lastId + ': got while-away');
process.exit(0);
