// The WebSocket side of the MQTT relay, byte by byte: handshake checks,
// framing (fragments, control frames, masking), limits, close codes, and
// clients that misbehave or vanish. Locations (see ws-raw.sh):
//   /mqtt         the dev configuration
//   /mqtt-limits  max frame 1k, max message 4k, buffer 1k, idle 3s, send 2s
//   /mqtt-down    a broker address nobody listens on
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import {
  request, open, frame, OP, closePayload, connectPacket, mqttBytes, sleep, httpPort, mqttPort,
} from './ws-lib.mjs';

const CONNACK = 'connack';

async function mqttSession(path = '/mqtt', clientId = `raw-${randomUUID().slice(0, 8)}`, extra = {}) {
  const conn = await open({ path });
  const reader = conn.mqtt();
  conn.sendBinary(connectPacket(clientId, 5, extra));
  const ack = await reader.packet();
  assert.equal(ack.cmd, CONNACK);
  assert.equal(ack.reasonCode, 0);
  return { conn, reader, clientId };
}

async function expectClose(conn, code, what) {
  const c = await conn.closeFrame();
  assert.ok(c, `${what}: a close frame before the TCP close`);
  assert.equal(c.code, code, `${what}: close code (reason: ${c.reason})`);
  await conn.closed();
  return c;
}

// A plain TCP client watching a topic, to see what reached the broker.
async function watcher(topic) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { protocolVersion: 5, reconnectPeriod: 0 });
  const got = [];
  c.on('message', (t, p) => got.push({ t, p }));
  await c.subscribeAsync(topic, { qos: 1 });
  return { c, got };
}

async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return;
    await sleep(25);
  }
  throw new Error(`timed out: ${what}`);
}

// --- handshake ---

test('handshake: 101 with accept key, Upgrade/Connection, subprotocol mqtt', async () => {
  const r = await request();
  assert.equal(r.status, 101);
  assert.equal(r.headers.upgrade.toLowerCase(), 'websocket');
  assert.equal(r.headers.connection.toLowerCase(), 'upgrade');
  assert.equal(r.headers['sec-websocket-protocol'], 'mqtt');
  assert.ok(r.headers['sec-websocket-accept']);
  assert.equal(r.headers['content-length'], undefined);
  assert.equal(r.headers['transfer-encoding'], undefined);
  r.conn.destroy();
});

test('handshake: subprotocol selection', async () => {
  const cases = [['mqttv3.1', 'mqttv3.1'], ['foo, mqtt', 'mqtt'], ['mqttv3.1, mqtt', 'mqttv3.1'], [undefined, undefined]];
  for (const [offer, want] of cases) {
    const r = await request({
      headers: {
        Host: 'x', Upgrade: 'websocket', Connection: 'keep-alive, Upgrade', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Protocol': offer,
      },
    });
    assert.equal(r.status, 101, `offer ${offer}`);
    assert.equal(r.headers['sec-websocket-protocol'], want, `offer ${offer}`);
    r.conn.destroy();
  }
  const bad = await request({
    headers: { Host: 'x', Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Protocol': 'chat' },
  });
  assert.equal(bad.status, 400, 'only unsupported subprotocols');
  bad.conn.destroy();
});

test('handshake: bad requests get 400/405/426', async () => {
  const base = () => ({ Host: 'x', Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), 'Sec-WebSocket-Version': '13' });
  const cases = [
    ['missing key', { ...base(), 'Sec-WebSocket-Key': undefined }, 400],
    ['key of 15 bytes', { ...base(), 'Sec-WebSocket-Key': randomBytes(15).toString('base64') }, 400],
    ['key not base64', { ...base(), 'Sec-WebSocket-Key': '!!!!!!!!!!!!!!!!!!!!!!==' }, 400],
    ['version 8', { ...base(), 'Sec-WebSocket-Version': '8' }, 426],
    ['missing version', { ...base(), 'Sec-WebSocket-Version': undefined }, 426],
    ['no Upgrade header', { ...base(), Upgrade: undefined }, 426],
    ['Connection without upgrade', { ...base(), Connection: 'keep-alive' }, 426],
  ];
  for (const [name, headers, status] of cases) {
    const r = await request({ headers });
    assert.equal(r.status, status, name);
    if (status === 426) assert.equal(r.headers['sec-websocket-version'], '13', name);
    r.conn.destroy();
  }
  const post = await request({ method: 'POST' });
  assert.equal(post.status, 405);
  post.conn.destroy();
  const h10 = await request({ raw: `GET /mqtt HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n` });
  assert.equal(h10.status, 400);
  h10.conn.destroy();
});

test('handshake: Origin allow-list', async () => {
  const hdr = (origin) => ({ Host: 'x', Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Protocol': 'mqtt', Origin: origin });
  for (const [origin, status] of [
    ['https://evil.example', 403], ['http://127.0.0.1', 403], ['null', 403],
    [`http://127.0.0.1:${httpPort}`, 101], [`http://LOCALHOST:${httpPort}`, 101], [undefined, 101],
  ]) {
    const r = await request({ headers: hdr(origin) });
    assert.equal(r.status, status, `Origin ${origin}`);
    r.conn.destroy();
  }
});

// --- framing ---

test('MQTT over one frame each way: CONNECT/CONNACK, PINGREQ/PINGRESP', async () => {
  const { conn, reader } = await mqttSession();
  conn.sendBinary(mqttBytes({ cmd: 'pingreq' }));
  assert.equal((await reader.packet()).cmd, 'pingresp');
  conn.send(frame(OP.CLOSE, closePayload(1000)));
  await expectClose(conn, 1000, 'normal close');
});

test('fragmented message with a ping in between is reassembled; ping gets its pong', async () => {
  const conn = await open();
  const reader = conn.mqtt();
  const c = connectPacket('frag-1');
  conn.send(frame(OP.BINARY, c.subarray(0, 3), { fin: false }));
  conn.send(frame(OP.PING, Buffer.from('hello')));
  conn.send(frame(OP.CONT, c.subarray(3, 7), { fin: false }));
  conn.send(frame(OP.CONT, Buffer.alloc(0), { fin: false }));
  conn.send(frame(OP.CONT, c.subarray(7), { fin: true }));
  const pong = await conn.next();
  assert.equal(pong.opcode, OP.PONG);
  assert.equal(pong.payload.toString(), 'hello');
  assert.equal((await reader.packet()).cmd, CONNACK);
  conn.destroy();
});

test('byte stream: packets split across messages and packed into one', async () => {
  const topic = `raw/${randomUUID()}`;
  const conn = await open();
  const reader = conn.mqtt();
  const sub = mqttBytes({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
  conn.sendBinary(Buffer.concat([connectPacket('pack-1'), sub]));
  assert.equal((await reader.packet()).cmd, CONNACK);
  assert.equal((await reader.packet()).cmd, 'suback');
  const pub = mqttBytes({ cmd: 'publish', topic, payload: Buffer.from('split in two'), qos: 0 });
  conn.sendBinary(pub.subarray(0, 5));
  await sleep(50);
  conn.sendBinary(pub.subarray(5));
  const p = await reader.packet();
  assert.equal(p.cmd, 'publish');
  assert.equal(p.payload.toString(), 'split in two');
  conn.destroy();
});

test('frames sent right behind the handshake request are relayed', async () => {
  const r = await request({ extra: frame(OP.BINARY, connectPacket('pipelined')) });
  assert.equal(r.status, 101);
  assert.equal((await r.conn.mqtt().packet()).cmd, CONNACK);
  r.conn.destroy();
});

test('unsolicited pong is ignored', async () => {
  const conn = await open();
  conn.send(frame(OP.PONG, Buffer.from('x')));
  conn.sendBinary(connectPacket('pong-1'));
  assert.equal((await conn.mqtt().packet()).cmd, CONNACK);
  conn.destroy();
});

for (const [name, bytes, code] of [
  ['unmasked frame', () => frame(OP.BINARY, Buffer.from([0xc0, 0]), { mask: false }), 1002],
  ['text frame', () => frame(OP.TEXT, Buffer.from('{"hello":1}')), 1003],
  ['reserved opcode 3', () => frame(3, Buffer.from('x')), 1002],
  ['reserved opcode 0xb', () => frame(0xb, Buffer.from('x')), 1002],
  ['RSV1 without an extension', () => frame(OP.BINARY, Buffer.from('x'), { rsv: 4 }), 1002],
  ['fragmented ping', () => frame(OP.PING, Buffer.from('x'), { fin: false }), 1002],
  ['ping longer than 125', () => frame(OP.PING, Buffer.alloc(126)), 1002],
  ['continuation outside a message', () => frame(OP.CONT, Buffer.from('x')), 1002],
  ['new message inside a fragmented one', () => Buffer.concat([frame(OP.BINARY, Buffer.from('a'), { fin: false }), frame(OP.BINARY, Buffer.from('b'))]), 1002],
  ['64-bit length with the top bit set', () => Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]), 1002],
  ['close with a 1-byte payload', () => frame(OP.CLOSE, Buffer.from([3])), 1002],
  ['close reason not UTF-8', () => frame(OP.CLOSE, Buffer.concat([closePayload(1000), Buffer.from([0xc3, 0x28])])), 1007],
]) {
  test(`protocol violation: ${name} -> ${code}`, async () => {
    const conn = await open();
    conn.send(bytes());
    await expectClose(conn, code, name);
  });
}

for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
  test(`invalid close code ${code} -> 1002`, async () => {
    const conn = await open();
    conn.send(frame(OP.CLOSE, closePayload(code)));
    await expectClose(conn, 1002, `close ${code}`);
  });
}

for (const code of [1000, 1001, 1003, 1011, 1013, 3000, 4999]) {
  test(`valid close code ${code} is echoed`, async () => {
    const { conn } = await mqttSession();
    conn.send(frame(OP.CLOSE, closePayload(code, 'bye')));
    await expectClose(conn, code, `close ${code}`);
  });
}

test('empty close frame gets an empty close frame', async () => {
  const conn = await open();
  conn.send(frame(OP.CLOSE));
  const c = await conn.closeFrame();
  assert.deepEqual(c, { code: undefined, reason: '' });
  await conn.closed();
});

test('limits: frame above max_frame_size -> 1009, at the limit passes', async () => {
  const topic = `raw/${randomUUID()}`;
  const { conn, reader } = await mqttSession('/mqtt-limits');
  conn.sendBinary(mqttBytes({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] }));
  assert.equal((await reader.packet()).cmd, 'suback');
  let n = 1024, pub;
  while ((pub = mqttBytes({ cmd: 'publish', topic, payload: Buffer.alloc(n, 0x41), qos: 0 })).length > 1024) n--;
  assert.equal(pub.length, 1024);
  conn.sendBinary(pub);
  const p = await reader.packet();
  assert.equal(p.payload.length, n);
  conn.sendBinary(Buffer.alloc(1025));
  await expectClose(conn, 1009, 'frame 1025 > 1k');
});

test('limits: fragmented message above max_message_size -> 1009', async () => {
  // one PUBLISH of 4200 bytes in fragments: the broker waits for its end
  const { conn } = await mqttSession('/mqtt-limits');
  const pub = mqttBytes({ cmd: 'publish', topic: 'raw/big', payload: Buffer.alloc(4200 - 12), qos: 0 });
  assert.ok(pub.length > 4096);
  for (let off = 0; off < pub.length; off += 1000) {
    const last = off + 1000 >= pub.length;
    conn.send(frame(off ? OP.CONT : OP.BINARY, pub.subarray(off, off + 1000), { fin: last }));
  }
  await expectClose(conn, 1009, 'message 4200 > 4k');
});

test('garbage input never crashes; the connection is closed', async () => {
  for (let i = 0; i < 40; i++) {
    const conn = await open({ path: i % 2 ? '/mqtt' : '/mqtt-limits' });
    conn.send(randomBytes(1 + Math.floor(Math.random() * 3000)));
    conn.send(frame(OP.CLOSE, closePayload(1000))); // ends a session that parsed as valid
    const c = await conn.closeFrame(8000);
    if (c !== null) assert.ok([1000, 1002, 1003, 1007, 1009, 1011].includes(c.code) || c.code === undefined, `close ${c.code}`);
    await conn.closed(8000);
  }
});

// --- lifecycle ---

test('idle timeout -> close 1000 "idle timeout"', async () => {
  const { conn } = await mqttSession('/mqtt-limits', undefined, { keepalive: 0 });
  const t0 = Date.now();
  const c = await conn.closeFrame(8000);
  assert.equal(c.code, 1000);
  assert.equal(c.reason, 'idle timeout');
  assert.ok(Date.now() - t0 >= 2000, 'not before the 3s idle timeout');
  await conn.closed();
});

test('broker unreachable -> close 1013 (try again later)', async () => {
  const conn = await open({ path: '/mqtt-down' });
  await expectClose(conn, 1013, 'broker down');
});

test('client vanishing closes its broker connection (will message fires)', async () => {
  const id = randomUUID();
  const w = await watcher(`wills/${id}`);
  const { conn } = await mqttSession('/mqtt', `v-${id.slice(0, 8)}`, { will: { topic: `wills/${id}`, payload: Buffer.from('gone'), qos: 1 } });
  conn.destroy();
  await until(() => w.got.length === 1, 5000, 'will message');
  await w.c.endAsync();
});

test('bytes sent just before an abrupt close still reach the broker', async () => {
  const topic = `raw/${randomUUID()}`;
  const w = await watcher(topic);
  const conn = await open();
  conn.sendBinary(Buffer.concat([connectPacket('abrupt-1'), mqttBytes({ cmd: 'publish', topic, payload: Buffer.from('last words'), qos: 0 })]));
  conn.sock.end();
  await until(() => w.got.length === 1, 5000, 'publish before close');
  assert.equal(w.got[0].p.toString(), 'last words');
  await w.c.endAsync();
});

test('client that stops reading: back-pressure, then send timeout closes it', async () => {
  const id = randomUUID();
  const topic = `flood/${id}`;
  const wills = await watcher(`wills/${id}`);
  const { conn, reader } = await mqttSession('/mqtt-limits', `slow-${id.slice(0, 8)}`, { will: { topic: `wills/${id}`, payload: Buffer.from('x'), qos: 0 } });
  conn.sendBinary(mqttBytes({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] }));
  assert.equal((await reader.packet()).cmd, 'suback');
  conn.sock.pause(); // stops reading: the kernel buffers fill, then nginx's
  const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { protocolVersion: 5, reconnectPeriod: 0 });
  // 10 MB, more than the sockets hold, in 1 KB messages: Mosquitto 2.0's
  // websockets listener sends a large message 4 KB per loop turn, so slowly
  // that it would look like a reading client.
  const payload = Buffer.alloc(1024, 0x42);
  for (let i = 0; i < 10240; i++) pub.publish(topic, payload, { qos: 0 });
  // nginx gives up on the stalled client (send timeout 2s) and closes the
  // broker side, so the broker fires the will.
  await until(() => wills.got.length === 1, 15000, 'will after send timeout');
  await pub.endAsync();
  await wills.c.endAsync();
  conn.destroy();
});
