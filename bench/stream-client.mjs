// Fan-out benchmark client: N SSE subscribers, one publisher, in one
// process so that send and receive timestamps share a clock.
//
//   node stream-client.mjs kafka|nchan SUB_URL N EVENTS RATE [PUB]
//     kafka: PUB is "streamprod BROKERS TOPIC" (records written to its stdin,
//            each produced as soon as it is read)
//     nchan: PUB is the publisher URL (one HTTP POST per event)
//
// Each event carries its send time; the client waits until every
// subscriber has every event (or 60 s after the last was sent), then
// prints one JSON line:
// {"subs","events","delivered","events_per_s","p50_ms","p99_ms"} where
// events_per_s = deliveries / (last receive - first send).
import http from 'http';
import { spawn } from 'child_process';
import { performance } from 'perf_hooks';

const [kind, subUrl, nArg, eventsArg, rateArg, pub] = process.argv.slice(2);
const n = Number(nArg), events = Number(eventsArg), rate = Number(rateArg);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const now = () => performance.timeOrigin + performance.now();
const lat = new Float64Array(n * events);
let delivered = 0, connected = 0, firstSend = 0, lastRecv = 0;

function finish(ok) {
  const l = lat.subarray(0, delivered).sort(); // typed array: numeric order
  const q = (p) => (l.length ? l[Math.min(l.length - 1, Math.floor(p * l.length))] : 0);
  console.log(JSON.stringify({
    kind, subs: n, events, delivered,
    events_per_s: Math.round(delivered / ((lastRecv - firstSend) / 1000 || 1)),
    p50_ms: +q(0.5).toFixed(2), p99_ms: +q(0.99).toFixed(2), complete: ok,
  }));
  process.exit(ok ? 0 : 1);
}

function subscribe() {
  const req = http.get(subUrl, { agent, headers: { Accept: 'text/event-stream' } }, (res) => {
    if (res.statusCode !== 200) { console.error(`HTTP ${res.statusCode}`); process.exit(2); }
    let buf = '', started = false;
    res.setEncoding('latin1');
    res.on('data', (chunk) => {
      const t = now();
      if (!started) { started = true; if (++connected === n) publish(); }
      buf += chunk;
      let at = 0, i;
      while ((i = buf.indexOf('data: ', at)) >= 0) {
        const e = buf.indexOf('\n', i);
        if (e < 0) break;
        const sent = Number(buf.slice(i + 6, e));
        if (sent > 0) {
          lat[delivered++] = t - sent;
          lastRecv = t;
          if (delivered === n * events) finish(true);
        }
        at = e + 1;
      }
      buf = buf.slice(at);
    });
  });
  req.on('error', (e) => { console.error(e.message); process.exit(2); });
}

let kc = null;
function send(i) {
  const body = now().toFixed(3);
  if (!firstSend) firstSend = Number(body);
  if (kind === 'kafka') {
    kc.stdin.write(`${body}\n`);
  } else {
    const r = http.request(pub, { method: 'POST', agent, headers: { 'Content-Type': 'text/plain' } });
    r.on('response', (res) => res.resume());
    r.on('error', (e) => console.error(e.message));
    r.end(body);
  }
}

function publish() {
  // subscribers of nchan and the stream settle before the clock starts
  setTimeout(() => {
    let i = 0;
    const gap = 1000 / rate;
    const t0 = now();
    (function tick() {
      while (i < events && now() - t0 >= i * gap) send(i++);
      if (i < events) setTimeout(tick, Math.max(0, Math.min(gap, 4)));
      else if (kc) kc.stdin.end();
    })();
  }, 500);
  // the events take events / rate seconds to send; then 60 s to arrive
  setTimeout(() => finish(false), 60000 + (1000 * events) / rate);
}

if (kind === 'kafka') {
  // started early with a warm-up record ("0", not counted): a producer's
  // first record waits for its bootstrap
  const [cmd, ...args] = pub.split(' ');
  kc = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'inherit'] });
  kc.stdin.write('0\n');
}

let k = 0;
(function batch() {
  for (let j = 0; j < 500 && k < n; j++, k++) subscribe();
  if (k < n) setTimeout(batch, 20);
})();
