// JWT authentication and identity ACLs against the broker started by
// tests/integration/auth-jwt.sh, which mints the tokens (env: VALID_RS, ...).
//
//   node --test tests/node/auth.mjs                  the suite
//   node tests/node/auth.mjs connect CID USER TOKEN  prints "connected" or "refused CODE"
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, publish, collect, sleep, waitFor, kafkaRecords, orderPlaced } from './lib.mjs';

const NOT_AUTHORIZED = 135;

async function tryConnect(clientId, username, password, opts = {}) {
  try {
    const c = await connect({ clientId, username, password, ...opts });
    return { ok: true, c };
  } catch (e) {
    return { ok: false, code: e.code };
  }
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
