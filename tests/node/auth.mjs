// JWT authentication and identity ACLs against the broker started by
// tests/integration/auth-jwt.sh, which mints the tokens (env: VALID_RS, ...).
//
//   node --test tests/node/auth.mjs                  the suite
//   node tests/node/auth.mjs connect CID USER TOKEN  prints "connected" or "refused CODE"
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { env as stack, connect, publish, collect, sleep, waitFor, kafkaRecords, orderPlaced } from './lib.mjs';

const NOT_AUTHORIZED = 135;

async function tryConnect(clientId, username, password, opts = {}) {
  try {
    const c = await connect({ clientId, username, password, ...opts });
    return { ok: true, c };
  } catch (e) {
    return { ok: false, code: e.code };
  }
}

// As tryConnect, with a message listener in place before the CONNACK: a
// resumed session's queued messages come right after it.
function connectReceiving(clientId, username, password, opts = {}) {
  return new Promise((resolve) => {
    const got = [];
    const c = mqtt.connect(`mqtt://127.0.0.1:${stack.mqttPort}`, {
      protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, clientId, username, password, ...opts,
    });
    c.on('message', (topic, payload) => got.push({ topic, payload }));
    c.once('connect', () => resolve({ ok: true, c, got }));
    c.once('error', (e) => {
      c.end(true);
      resolve({ ok: false, code: e.code, got });
    });
  });
}

// The SUBACK code for one filter (mqtt.js rejects the callback on failure codes).
function subscribeCode(client, filter) {
  return new Promise((resolve) =>
    client.subscribe(filter, { qos: 1 }, (err, granted) => {
      if (err) return resolve(err.packet && err.packet.granted ? err.packet.granted[0] : -1);
      resolve(granted[0].qos);
    }));
}

const end = (c) => new Promise((r) => c.end(false, {}, r));

if (process.argv[2] === 'connect') {
  const [, , , clientId, username, token] = process.argv;
  const r = await tryConnect(clientId, username ?? '', token);
  console.log(r.ok ? 'connected' : `refused ${r.code}`);
  if (r.ok) await end(r.c);
  process.exit(0);
}

if (process.argv[2] === 'expiry') {
  const [, , , clientId, token] = process.argv;
  const r = await tryConnect(clientId, '', token);
  if (!r.ok) {
    console.log(`refused ${r.code}`);
    process.exit(1);
  }
  const t0 = Date.now();
  const closed = await Promise.race([new Promise((res) => r.c.once('close', () => res(true))), sleep(20000).then(() => false)]);
  console.log(closed ? `closed after ${Date.now() - t0} ms` : 'still connected after 20 s');
  r.c.end(true);
  process.exit(closed ? 0 : 1);
}

const env = process.env;

test('valid tokens of each algorithm connect', async () => {
  const cases = [
    ['c-rs', 'alice', env.VALID_RS], // username equal to the preferred_username claim
    ['c-es', 'bob', env.VALID_ES],
    ['c-hs', '', env.VALID_HS], // empty username
    ['c-nokid', '', env.VALID_NOKID], // no kid, second accepted issuer
  ];
  for (const [id, user, token] of cases) {
    const r = await tryConnect(id, user, token);
    assert.ok(r.ok, `${id} refused with ${r.code}`);
    await end(r.c);
  }
});

test('bad tokens are refused', async () => {
  const cases = [
    ['c-expired', env.EXPIRED],
    ['c-not-yet', env.NOT_YET],
    ['c-wrong-iss', env.WRONG_ISS],
    ['c-wrong-aud', env.WRONG_AUD],
    ['c-bad-sig', env.BAD_SIG],
    ['c-alg-none', env.ALG_NONE],
    ['c-hs-pubkey', env.HS_WITH_PUBKEY],
    ['c-malformed', env.MALFORMED],
    ['c-slash', env.SLASH_SUB],
    ['c-wild', env.WILDCARD_SUB],
  ];
  for (const [id, token] of cases) {
    assert.ok(token, `no token for ${id}`);
    const r = await tryConnect(id, '', token);
    if (r.ok) await end(r.c);
    assert.equal(r.ok, false, `${id} was accepted`);
    assert.equal(r.code, NOT_AUTHORIZED, `${id}: CONNACK ${r.code}`);
  }
  let r = await tryConnect('c-no-token', undefined, undefined);
  assert.equal(r.ok, false, 'a client without a token was accepted');
  r = await tryConnect('c-user-mismatch', 'mallory', env.VALID_RS);
  assert.equal(r.ok, false, 'a username that is not the token\'s was accepted');
  r = await tryConnect('c+plus', '', env.VALID_HS);
  assert.equal(r.ok, false, 'a client id with + was accepted');
});

test('internal usernames are left to the password file', async () => {
  const ok = await tryConnect('relay-1', 'relay', 'relay-secret');
  assert.ok(ok.ok, `relay refused: ${ok.code}`);
  await end(ok.c);
  const bad = await tryConnect('relay-2', 'relay', 'wrong');
  assert.equal(bad.ok, false, 'relay with a wrong password was accepted');
});

test('a client id cannot be taken over by another identity', async () => {
  const alice = await tryConnect('c-taken', 'alice', env.ALICE, { clean: false, properties: { sessionExpiryInterval: 60 } });
  assert.ok(alice.ok);
  const bob = await tryConnect('c-taken', 'bob', env.BOB);
  assert.equal(bob.ok, false, 'bob took over alice\'s session');
  assert.ok(alice.c.connected, 'alice lost her connection');
  // The same identity may take over its own session.
  const again = await tryConnect('c-taken', 'alice', env.ALICE, { clean: false, properties: { sessionExpiryInterval: 60 } });
  assert.ok(again.ok, 'alice could not resume her own session');
  await end(again.c);
  await end(alice.c);
});

test('an internal client\'s id is refused to JWT users; its connection and session stay', async () => {
  // A persistent session of the internal relay, as a real back-end keeps one.
  const session = { clean: false, properties: { sessionExpiryInterval: 300 } };
  let relay = await tryConnect('relay-5', 'relay', 'relay-secret', session);
  assert.ok(relay.ok, `relay refused: ${relay.code}`);
  const bob = (await tryConnect('c-bob-3', 'bob', env.BOB)).c;
  assert.ok(bob, 'bob could not connect');
  try {
    const got = collect(relay.c, 'users/+/notifications');
    assert.equal(await subscribeCode(relay.c, 'users/+/notifications'), 1);

    // alice, with a valid token, presents the relay's client id (and asks
    // for its session): refused at CONNECT, the relay stays connected.
    const takeover = await tryConnect('relay-5', '', env.ALICE, session);
    if (takeover.ok) await end(takeover.c);
    assert.equal(takeover.ok, false, 'a JWT user took over the relay\'s client id');
    assert.equal(takeover.code, NOT_AUTHORIZED);
    await sleep(200);
    assert.ok(relay.c.connected, 'the relay lost its connection');
    assert.equal(await publish(bob, 'users/bob/notifications', 'while connected'), 0);
    await waitFor(() => got.some((m) => m.payload.toString() === 'while connected'), 5000, 'the relay still receiving');

    // The relay offline, a message queued in its session: a token presenting
    // its id still gets nothing, and the relay finds the message on return.
    await end(relay.c);
    assert.equal(await publish(bob, 'users/bob/notifications', 'queued'), 0);
    const thief = await connectReceiving('relay-5', '', env.ALICE, session);
    if (thief.ok) {
      await sleep(500);
      await end(thief.c);
    }
    assert.deepEqual(thief.got.map((m) => m.payload.toString()), [], 'a JWT user received the relay\'s messages');
    assert.equal(thief.ok, false, 'a JWT user resumed the relay\'s session');
    relay = await connectReceiving('relay-5', 'relay', 'relay-secret', session);
    assert.ok(relay.ok, `relay could not resume: ${relay.code}`);
    await waitFor(() => relay.got.some((m) => m.payload.toString() === 'queued'), 5000, 'the queued message for the relay');

    // Another pattern-shaped id of the relay, and the internal user outside its ids.
    const other = await tryConnect('relay-other', '', env.BOB);
    if (other.ok) await end(other.c);
    assert.equal(other.ok, false, 'a JWT user got an id reserved for the relay');
    const stray = await tryConnect('svc-1', 'relay', 'relay-secret');
    if (stray.ok) await end(stray.c);
    assert.equal(stray.ok, false, 'the internal user connected with an id outside internal_client_ids');
  } finally {
    await Promise.all([end(relay.c), end(bob)]);
  }
});

test('client strings in log lines stay on their line, escaped', async () => {
  // mqtt.js refuses nothing here; Mosquitto itself refuses C0 and C1 in
  // client ids and topics (malformed UTF-8), so these carry what it lets in.
  const weird = 'FORGED-C\u2028\u202e\'"';
  const c = await tryConnect(`c-${weird}`, '', env.VALID_HS);
  assert.ok(c.ok, `client id refused: ${c.code}`);
  try {
    assert.equal(await publish(c.c, 'users/bob/FORGED-T\u2028\u202e\'', 'x'), NOT_AUTHORIZED);
    // C0 and C1 in an attribute are refused before the type is looked at
    // (invalid_attribute); line separators and bidi controls reach the
    // type's own refusal, whose log line quotes the type.
    for (const type of ['x\nFORGED-E\u2028\u0085\u202e\'', 'x FORGED-E\u2028\u202e\'']) {
      const ev = orderPlaced({ type });
      assert.equal(await publish(c.c, `events/order/${ev.data.orderId}`, JSON.stringify(ev)), NOT_AUTHORIZED);
    }
  } finally {
    await end(c.c);
  }
  for (const token of [env.FORGE_REFUSED, env.FORGE_OK]) {
    const r = await tryConnect('c-forge', '', token);
    if (r.ok) await end(r.c);
  }
});

test('users stay inside their own topics', async () => {
  const alice = (await tryConnect('c-alice', 'alice', env.ALICE)).c;
  const bob = (await tryConnect('c-bob', 'bob', env.BOB)).c;
  const relay = (await tryConnect('relay-3', 'relay', 'relay-secret')).c;
  assert.ok(alice && bob && relay, 'a client could not connect');
  const toAlice = collect(alice, '#'), toBob = collect(bob, '#'), toRelay = collect(relay, '#');
  try {
    assert.equal(await subscribeCode(bob, 'users/bob/#'), 1);
    assert.equal(await subscribeCode(relay, 'users/+/notifications'), 1); // the acl_file's rule
    for (const filter of ['users/bob/#', 'users/+/notifications', '#', 'users/#', 'clients/c-bob/errors', 'clients/+/errors', '$SYS/#']) {
      assert.equal(await subscribeCode(alice, filter), 135, `alice was granted ${filter}`);
    }
    for (const filter of ['users/alice/#', 'users/alice/notifications', 'users/alice/+', 'clients/c-alice/errors', 'clients/c-alice/replies']) {
      assert.equal(await subscribeCode(alice, filter), 1, `alice was refused ${filter}`);
    }

    assert.equal(await publish(alice, 'users/bob/notifications', 'forged by alice'), NOT_AUTHORIZED);
    assert.equal(await publish(alice, 'clients/c-bob/replies', 'forged by alice'), NOT_AUTHORIZED);
    assert.equal(await publish(bob, 'users/bob/notifications', 'from bob'), 0);
    await waitFor(() => toBob.length >= 1 && toRelay.length >= 1, 5000, 'bob\'s own notification');
    // The internal relay (Mosquitto's acl_file) writes into alice's topics; she reads them.
    assert.equal(await publish(relay, 'users/alice/notifications', 'for alice'), 0);
    await waitFor(() => toAlice.some((m) => m.payload.toString() === 'for alice'), 5000, 'the relay\'s notification');

    // An event from alice passes the ACL and reaches ingest, which refuses it
    // and tells alice alone on clients/c-alice/errors.
    await publish(alice, 'events/order/1', 'not json');
    await waitFor(() => toAlice.some((m) => m.topic === 'clients/c-alice/errors'), 5000, 'alice\'s error event');

    await sleep(300);
    assert.deepEqual(toBob.map((m) => m.payload.toString()), ['from bob']);
    assert.deepEqual(toRelay.map((m) => m.payload.toString()).sort(), ['for alice', 'from bob']);
    // (alice holds three overlapping subscriptions, hence possibly several copies)
    assert.deepEqual([...new Set(toAlice.filter((m) => m.topic.startsWith('users/')).map((m) => m.topic))], ['users/alice/notifications']);
    assert.ok(!toBob.some((m) => m.topic.startsWith('clients/')), 'bob received alice\'s errors');
  } finally {
    await Promise.all([end(alice), end(bob), end(relay)]);
  }
});

test('the authenticated identity is stamped on the event in Kafka; a forged one is overwritten', async () => {
  const alice = (await tryConnect('c-alice-2', 'alice', env.ALICE)).c;
  assert.ok(alice, 'alice could not connect');
  try {
    const ev = orderPlaced({ authtype: 'service_account', authid: 'bob', authclaims: 'admin' });
    assert.equal(await publish(alice, `events/order/${ev.data.orderId}`, JSON.stringify(ev)), 0);
    let rec;
    await waitFor(async () => (rec = (await kafkaRecords('events.order')).find((r) => r.headers.ce_id === ev.id)), 15000, 'the event in Kafka');
    assert.equal(rec.headers.ce_authtype, 'app_user');
    assert.equal(rec.headers.ce_authid, 'alice');
    assert.equal(rec.headers.ce_authclaims, undefined);
  } finally {
    await end(alice);
  }
});

// ingest.response_topics here: clients/{client_id}/replies and
// users/{sub}/replies/# (the JWT identity; a filter: any topic below it).
test('a request may name only its own identity\'s reply topics', async () => {
  const alice = (await tryConnect('c-alice-3', 'alice', env.ALICE)).c;
  assert.ok(alice, 'alice could not connect');
  try {
    const request = async (responseTopic) => {
      const ev = orderPlaced();
      const rc = await publish(alice, `events/order/${ev.data.orderId}`, JSON.stringify(ev), {
        qos: 1, properties: { responseTopic, correlationData: Buffer.from('c-1') },
      });
      return { rc, id: ev.id };
    };
    for (const ok of ['users/alice/replies/q-1', 'users/alice/replies', 'clients/c-alice-3/replies']) {
      const { rc, id } = await request(ok);
      assert.equal(rc, 0, `${ok} refused`);
      let rec;
      await waitFor(async () => (rec = (await kafkaRecords('events.order')).find((r) => r.headers.ce_id === id)), 15000, 'the event in Kafka');
      assert.equal(rec.headers.mqtt_response_topic, ok);
    }
    const refused = [];
    for (const bad of ['users/bob/replies/q-1', 'users/alice/notifications', 'clients/c-bob/replies']) {
      const { rc, id } = await request(bad);
      assert.equal(rc, NOT_AUTHORIZED, `${bad} accepted`);
      refused.push(id);
    }
    await sleep(300);
    const ids = new Set((await kafkaRecords('events.order')).map((r) => r.headers.ce_id));
    for (const id of refused) assert.ok(!ids.has(id), 'a refused request reached Kafka');
  } finally {
    await end(alice);
  }
});
