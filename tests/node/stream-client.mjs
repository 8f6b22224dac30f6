// EventSource / WebSocket client for the tributary_stream tests.
//
//   node stream-client.mjs sse URL COUNT TIMEOUT_MS [LAST_EVENT_ID]
//   node stream-client.mjs ws  URL COUNT TIMEOUT_MS
//
// Prints one JSON line per event received ({id, type, data} for SSE,
// the parsed frame for WebSocket) until COUNT events arrived, then exits 0;
// exits 1 on timeout or error. The npm `eventsource` package is the same
// EventSource a browser has (Last-Event-ID, retry, reconnect).
import EventSource from 'eventsource';
import WebSocket from 'ws';

const [mode, url, countArg, timeoutArg, lastId] = process.argv.slice(2);
const want = Number(countArg);
let got = 0;

const timer = setTimeout(() => {
  console.error(`stream-client: timeout after ${got} of ${want} events`);
  process.exit(1);
}, Number(timeoutArg));

function done() {
  clearTimeout(timer);
  process.exit(0);
}

if (want === 0) setTimeout(done, Number(timeoutArg) - 100);

if (mode === 'sse') {
  const headers = lastId ? { 'Last-Event-ID': lastId } : {};
  const es = new EventSource(url, { headers });
  const onEvent = (ev) => {
    console.log(JSON.stringify({ id: ev.lastEventId, type: ev.type, data: ev.data }));
    if (++got === want) { es.close(); done(); }
  };
  es.onmessage = onEvent;
  // named events (CloudEvents types) are not "message": listen to the known ones
  for (const t of (process.env.SSE_TYPES || '').split(',').filter(Boolean)) {
    es.addEventListener(t, onEvent);
  }
  es.onerror = (e) => {
    if (e && e.status) { console.error(`stream-client: HTTP ${e.status}`); process.exit(1); }
  };
} else if (mode === 'ws') {
  const ws = new WebSocket(url, 'cloudevents.json');
  ws.on('open', () => {
    if (ws.protocol !== 'cloudevents.json') {
      console.error(`stream-client: subprotocol "${ws.protocol}"`);
      process.exit(1);
    }
    console.error('stream-client: open');
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary) { console.error('stream-client: binary frame'); process.exit(1); }
    console.log(JSON.stringify(JSON.parse(data.toString())));
    if (++got === want) { ws.close(1000); done(); }
  });
  ws.on('unexpected-response', (req, res) => {
    console.error(`stream-client: HTTP ${res.statusCode}`); process.exit(1);
  });
  ws.on('error', (e) => { console.error(`stream-client: ${e.message}`); process.exit(1); });
} else {
  console.error('usage: stream-client.mjs sse|ws URL COUNT TIMEOUT_MS [LAST_EVENT_ID]');
  process.exit(2);
}
