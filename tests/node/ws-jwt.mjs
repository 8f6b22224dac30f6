// tributary_jwt on the MQTT relay (driven by tests/integration/ws-jwt.sh):
// mqtt.js clients that hold no credentials connect with the token nginx
// took from a cookie or the Authorization header; the broker (Tributary
// plugin, no anonymous clients) sees the token's sub as the username.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';

const URL = `ws://127.0.0.1:${process.env.HTTP_PORT}/mqtt`;
const { ALICE_TOKEN, BOB_TOKEN, EXPIRED_TOKEN } = process.env;

const connect = (headers, opts = {}) => mqtt.connectAsync(URL, {
  protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000,
  clientId: `jwt-${randomUUID().slice(0, 8)}`, wsOptions: { headers }, ...opts,
});

// A round trip inside the user's own topics: the broker's ACL is per sub,
// so it works only if the broker took the connection as that user.
async function ownRoundTrip(c, user) {
  const topic = `users/${user}/notifications`;
  await c.subscribeAsync(`users/${user}/#`, { qos: 1 });
  const got = new Promise((resolve) => c.once('message', (t, p) => resolve([t, p.toString()])));
  await c.publishAsync(topic, 'hello', { qos: 1 });
  assert.deepEqual(await got, [topic, 'hello']);
}

// The connection fails: resolves with the error.
async function refused(headers, opts) {
  try {
    const c = await connect(headers, opts);
    await c.endAsync();
  } catch (e) {
    return e;
  }
  throw new Error('connected');
}

for (const version of [4, 5]) {
  test(`MQTT ${version === 4 ? '3.1.1' : '5'}: token from the cookie, as its sub`, async () => {
    const c = await connect({ Cookie: `theme=dark; access_token=${ALICE_TOKEN}` }, { protocolVersion: version });
    await ownRoundTrip(c, 'alice');
    await c.endAsync();
  });
}

test('token from the Authorization header', async () => {
  const c = await connect({ Authorization: `Bearer ${BOB_TOKEN}` });
  await ownRoundTrip(c, 'bob');
  // and only as bob: alice's topics are not his
  try {
    await assert.rejects(c.subscribeAsync('users/alice/#', { qos: 1 }), /Not authorized/);
  } finally {
    await c.endAsync();
  }
});

for (const [version, code] of [[4, 4], [5, 134]]) {
  for (const [what, creds] of [['password', { username: 'alice', password: 'x' }], ['username', { username: 'alice' }]]) {
    test(`MQTT ${version === 4 ? '3.1.1' : '5'}: a CONNECT with its own ${what} gets CONNACK ${code}`, async () => {
      const e = await refused({ Cookie: `access_token=${ALICE_TOKEN}` },
        { protocolVersion: version, clientId: `mallory-${randomUUID().slice(0, 8)}`, ...creds });
      assert.equal(e.code, code, String(e));
    });
  }
}

test('a CONNECT split over several frames still gets the token', async () => {
  // mqtt.js writes a CONNECT in one message; browsers' other libraries
  // need not: raw frames (tests/node/ws-lib.mjs)
  const { open, frame, OP, connectPacket } = await import('./ws-lib.mjs');
  const conn = await open({ extraHeaders: { Cookie: `access_token=${ALICE_TOKEN}` } });
  const c = connectPacket(`split-${randomUUID().slice(0, 8)}`);
  conn.send(frame(OP.BINARY, c.subarray(0, 3), { fin: false }));
  conn.send(frame(OP.CONT, c.subarray(3), { fin: true }));
  const p = await conn.mqtt().packet();
  assert.equal(p.cmd, 'connack');
  assert.equal(p.reasonCode, 0);
  conn.destroy();
});

test('packets right behind the CONNECT, in the same read, follow it', async () => {
  const { open, frame, OP, connectPacket, mqttBytes } = await import('./ws-lib.mjs');
  const conn = await open({ extraHeaders: { Cookie: `access_token=${ALICE_TOKEN}` } });
  const sub = mqttBytes({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'users/alice/#', qos: 0 }] });
  conn.send(Buffer.concat([frame(OP.BINARY, connectPacket(`behind-${randomUUID().slice(0, 8)}`)), frame(OP.BINARY, sub)]));
  const reader = conn.mqtt();
  assert.equal((await reader.packet()).reasonCode, 0);
  const suback = await reader.packet();
  assert.equal(suback.cmd, 'suback');
  assert.equal(suback.messageId, 7);
  conn.destroy();
});

test('an expired token, or none, is refused at the handshake (401)', async () => {
  const { request } = await import('./ws-lib.mjs');
  for (const extraHeaders of [{ Cookie: `access_token=${EXPIRED_TOKEN}` }, { Authorization: `Bearer ${EXPIRED_TOKEN}` }, {}]) {
    const r = await request({ extraHeaders });
    r.conn.destroy();
    assert.equal(r.status, 401, JSON.stringify(extraHeaders));
    assert.match(r.headers['www-authenticate'], /^Bearer/);
  }
});
