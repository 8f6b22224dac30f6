// Resume check for tributary_stream: records carry sequence numbers
// 1..TOTAL (value "N", key "k<N % 8>"); the client must see each one it is
// entitled to exactly once although it disconnects and resumes while they
// are being produced:
//   1. live EventSource until a third has arrived, then close;
//   2. a new EventSource with Last-Event-ID: the last id seen;
//   3. at two thirds, close again and resume with ?from=<id> (the
//      WebSocket / bookmark way), and stay: if RELOAD_AT is set, the
//      caller reloads nginx then and the EventSource's own reconnect
//      (Last-Event-ID, retry:) must carry on without loss.
//
//   node stream-resume.mjs URL TOTAL MOD REM TIMEOUT_MS
// Expects the sequence numbers n with n % MOD == REM (MOD 1: all).
import EventSource from 'eventsource';

const [url, totalArg, modArg, remArg, timeoutArg] = process.argv.slice(2);
const total = Number(totalArg), mod = Number(modArg), rem = Number(remArg);
const expected = [];
for (let n = 1; n <= total; n++) if (n % mod === rem) expected.push(n);

const seen = new Set();
let lastId = '';
let es = null;
let phase = 1;
let reconnects = 0;

function fail(msg) {
  console.error(`stream-resume: ${msg}`);
  process.exit(1);
}

setTimeout(() => {
  const missing = expected.filter((n) => !seen.has(n));
  fail(`timeout: ${seen.size} of ${expected.length} seen, missing ${missing.slice(0, 20).join(',')}`);
}, Number(timeoutArg));

function open(u, headers) {
  es = new EventSource(u, { headers });
  es.onopen = () => { reconnects++; };
  es.onmessage = (ev) => {
    const n = Number(ev.data);
    if (!Number.isInteger(n) || n < 1 || n > total) fail(`bad data ${ev.data}`);
    if (n % mod !== rem) fail(`filter: got ${n}`);
    if (seen.has(n)) fail(`duplicate ${n} (id ${ev.lastEventId}, phase ${phase})`);
    seen.add(n);
    lastId = ev.lastEventId;
    if (phase === 1 && seen.size >= expected.length / 3) {
      phase = 2;
      es.close();
      // production goes on meanwhile
      setTimeout(() => open(url, { 'Last-Event-ID': lastId }), 300);
    } else if (phase === 2 && seen.size >= (2 * expected.length) / 3) {
      phase = 3;
      es.close();
      const sep = url.includes('?') ? '&' : '?';
      setTimeout(() => open(`${url}${sep}from=${encodeURIComponent(lastId)}`, {}), 300);
      console.log('phase3');
    }
    if (seen.size === expected.length) {
      console.log(`ok ${seen.size} events, ${reconnects} connections, last id ${lastId}`);
      process.exit(0);
    }
  };
  es.onerror = (e) => {
    if (e && e.status) fail(`HTTP ${e.status}`);
  };
}

open(url, {});
