// Many SSE subscribers at once (plain http, a minimal SSE parser: the npm
// EventSource costs too much memory for thousands in one process).
//
//   node stream-fanout.mjs URL CONNECTIONS TOTAL TIMEOUT_MS
//
// Each connection must receive the records with data 1..TOTAL (a number,
// optionally followed by a space and padding) exactly once
// (any order across partitions). Prints "connected N" once all responses
// have started, then "done MS" (time from the first to the last record
// received over all connections) and exits 0; exits 1 on a duplicate, a
// stray record, a closed stream or a timeout.
import http from 'http';

const [url, connArg, totalArg, timeoutArg] = process.argv.slice(2);
const conns = Number(connArg), total = Number(totalArg);
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
let connected = 0, complete = 0, first = 0;
const counts = new Array(conns).fill(0);
const seens = [];
const start = Date.now();

function fail(msg) {
  console.error(`stream-fanout: ${msg}`);
  process.exit(1);
}

setTimeout(() => {
  const missing = [];
  if (seens[0]) for (let n = 1; n <= total && missing.length < 12; n++) if (!seens[0][n]) missing.push(n);
  fail(`timeout: ${connected} connected, ${complete} of ${conns} complete (records per connection: min ${Math.min(...counts)}, max ${Math.max(...counts)} of ${total}; connection 0 misses ${missing.join(' ')})`);
}, Number(timeoutArg));

function subscribe(i) {
  const seen = new Uint8Array(total + 1);
  seens[i] = seen;
  let count = 0, buf = '', started = false;
  const req = http.get(url, { agent, headers: { Accept: 'text/event-stream' } }, (res) => {
    if (res.statusCode !== 200) fail(`connection ${i}: HTTP ${res.statusCode}`);
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      if (!started) {
        started = true;
        if (++connected === conns) console.log(`connected ${conns} in ${Date.now() - start} ms`);
      }
      buf += chunk;
      let at;
      while ((at = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, at);
        buf = buf.slice(at + 2);
        for (const line of ev.split('\n')) {
          if (!line.startsWith('data: ')) continue;
          const n = Number(line.slice(6).split(' ', 1)[0]);
          if (!Number.isInteger(n) || n < 1 || n > total) fail(`connection ${i}: stray data ${line}`);
          if (seen[n]) fail(`connection ${i}: duplicate ${n}`);
          seen[n] = 1;
          if (!first) first = Date.now();
          counts[i] = count + 1;
          if (++count === total) {
            if (++complete === conns) {
              console.log(`done ${Date.now() - first}`);
              process.exit(0);
            }
          }
        }
      }
    });
    res.on('end', () => fail(`connection ${i}: stream ended after ${count}`));
  });
  req.on('error', (e) => fail(`connection ${i}: ${e.message}`));
}

// in batches, so that the listen backlog keeps up
let next = 0;
(function batch() {
  for (let k = 0; k < 250 && next < conns; k++) subscribe(next++);
  if (next < conns) setTimeout(batch, 20);
})();
