// Tributary demo client: MQTT v5 over WebSocket (mqtt.js) to /mqtt on the
// page's own origin. Publishes CloudEvents, shows rejections from
// clients/{client_id}/errors, replies on clients/{client_id}/replies and
// notifications on users/{user}/notifications. Everything shown comes from the
// network, so it is written with textContent, never as HTML.
//
// Signed in (a site with tributary_jwt on /mqtt and /whoami): the JWT sits in
// an HttpOnly cookie that this code cannot read; the browser sends it with the
// WebSocket handshake and nginx writes it into the MQTT CONNECT, so mqtt.js
// connects without credentials. /whoami tells the page its user (the token's
// sub). Without sign-in (the dev stack): ?user=NAME, anonymous MQTT.
'use strict';

(async function () {
  const $ = (id) => document.getElementById(id);

  const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
    : '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) =>
      (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16)));

  const params = new URLSearchParams(location.search);

  async function identity() {
    try {
      const r = await fetch('/whoami', { credentials: 'same-origin', cache: 'no-store' });
      const type = r.headers.get('content-type') || '';
      // elsewhere /whoami is the SPA fallback (text/html): not signed in
      const sub = r.ok && type.startsWith('text/plain') ? (await r.text()).trim() : '';
      if (sub) return { user: sub, signedIn: true };
    } catch (e) {
      // no answer: not signed in
    }
    return { user: (params.get('user') || 'demo-user').replace(/[+#/]/g, '_'), signedIn: false };
  }

  const { user, signedIn } = await identity();
  const clientId = `web-${uuid().slice(0, 8)}`;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/mqtt`;
  const topics = {
    errors: `clients/${clientId}/errors`,
    replies: `clients/${clientId}/replies`,
    notifications: `users/${user}/notifications`,
  };

  $('client-id').textContent = clientId;
  $('user').textContent = user;
  $('user-note').textContent = signedIn
    ? '(signed in: the token stays in an HttpOnly cookie; nginx puts it into the MQTT CONNECT)'
    : '(change with ?user=NAME)';
  $('mqtt-url').textContent = url;
  $('errors-topic').textContent = topics.errors;
  $('replies-topic').textContent = topics.replies;
  $('notifications-topic').textContent = topics.notifications;
  $('notify-example').textContent =
    `Try it: echo '${user}|{"message":"Your order shipped"}' | kcat -b 127.0.0.1:9092 -P -t notifications -K '|'`;

  const sent = new Map();      // event id -> <li>
  const pending = new Map();   // correlation id -> <li>

  function item(list, state, tag, text, detail) {
    const ul = $(list);
    const empty = ul.querySelector('.empty');
    if (empty) empty.remove();
    const li = document.createElement('li');
    if (state) li.dataset.state = state;
    const t = document.createElement('span');
    t.className = 'tag';
    t.textContent = tag;
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    li.append(t, body);
    if (detail !== undefined) {
      const pre = document.createElement('pre');
      pre.textContent = typeof detail === 'string' ? detail : JSON.stringify(detail, null, 2);
      li.append(pre);
    }
    ul.prepend(li);
    return li;
  }

  function setState(li, state, tag) {
    li.dataset.state = state;
    li.querySelector('.tag').textContent = tag;
  }

  function setStatus(state, text) {
    const s = $('status');
    s.dataset.state = state;
    s.textContent = text;
    for (const b of ['btn-valid', 'btn-invalid', 'btn-quote']) $(b).disabled = state !== 'connected';
  }

  const client = mqtt.connect(url, {
    protocolVersion: 5,
    clientId,
    clean: true,
    keepalive: 30,
    reconnectPeriod: 2000,
    connectTimeout: 10000,
  });

  client.on('connect', () => {
    setStatus('connected', `connected (MQTT 5 over ${url})`);
    client.subscribe(Object.values(topics), { qos: 1 }, (err, granted) => {
      if (err) return setStatus('error', `subscribe failed: ${err.message}`);
      const refused = (granted || []).filter((g) => g.qos >= 0x80);
      if (refused.length) setStatus('error', `subscription refused: ${refused.map((g) => g.topic).join(', ')}`);
    });
  });
  client.on('reconnect', () => setStatus('connecting', 'reconnecting…'));
  client.on('offline', () => setStatus('offline', 'offline — retrying'));
  client.on('error', (err) => setStatus('error', `error: ${err.message}`));

  client.on('message', (topic, payload, packet) => {
    const text = new TextDecoder().decode(payload);
    let json;
    try { json = JSON.parse(text); } catch (e) { json = undefined; }

    if (topic === topics.errors) {
      const d = (json && json.data) || {};
      const id = d.event && d.event.id;
      const li = item('rejections', 'rejected', d.reason || 'rejected',
        `${(d.event && d.event.type) || 'event'} ${id || ''} on ${(d.mqtt && d.mqtt.topic) || '?'}: ${d.message || text}`,
        d.errors && d.errors.length ? d.errors.map((e) => `${e.instanceLocation || '/'}: ${e.message}`).join('\n') : undefined);
      if (id) li.dataset.eventId = id;
      if (id && sent.has(id)) setState(sent.get(id), 'rejected', 'rejected');
      return;
    }

    if (topic === topics.replies) {
      const corr = packet.properties && packet.properties.correlationData
        ? new TextDecoder().decode(packet.properties.correlationData) : '';
      const req = pending.get(corr);
      const type = (json && json.type) || (packet.properties && packet.properties.userProperties
        && packet.properties.userProperties.type) || 'reply';
      if (req) {
        setState(req, 'accepted', 'answered');
        pending.delete(corr);
      }
      const li = item('replies', 'accepted', type, `correlation ${corr || '(none)'}`, json || text);
      li.dataset.correlation = corr;
      return;
    }

    if (topic === topics.notifications) {
      const msg = json && ((json.data && json.data.message) || json.message);
      item('notifications', 'accepted', 'notification', msg || text, json && !msg ? json : undefined);
    }
  });

  function placed(valid) {
    const orderId = uuid();
    const data = valid
      ? { orderId, customerId: `customer-${user}`, lines: [{ sku: 'SKU-42', qty: 2 }, { sku: 'SKU-7', qty: 1 }], total: 59.9, currency: 'EUR' }
      : { orderId, customerId: '', lines: [{ sku: 'SKU-42', qty: 0 }], total: -1, currency: 'euro' };
    return {
      specversion: '1.0',
      id: uuid(),
      source: 'urn:tributary:web-demo',
      type: 'example.order.placed',
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data,
    };
  }

  function publishEvent(ev, topic, opts, li) {
    client.publish(topic, JSON.stringify(ev), { qos: 1, ...opts }, (err) => {
      // MQTT 5: the broker answers a refused PUBLISH with PUBACK 0x87
      if (err && err.code !== undefined) {
        setState(li, 'rejected', `rejected 0x${err.code.toString(16)}`);
      } else if (err) {
        setState(li, 'error', 'not sent');
      } else if (li.dataset.state === 'sent') {
        setState(li, 'accepted', 'accepted');
      }
    });
  }

  function send(valid) {
    const ev = placed(valid);
    const topic = `events/order/${ev.data.orderId}`;
    const li = item('events', 'sent', 'sent', `${valid ? 'valid' : 'invalid'} ${ev.type} ${ev.id} → ${topic}`, ev.data);
    li.dataset.eventId = ev.id;
    sent.set(ev.id, li);
    publishEvent(ev, topic, {}, li);
  }

  $('btn-valid').addEventListener('click', () => send(true));
  $('btn-invalid').addEventListener('click', () => send(false));

  $('btn-quote').addEventListener('click', () => {
    const orderId = uuid();
    const corr = uuid();
    const ev = {
      specversion: '1.0',
      id: uuid(),
      source: 'urn:tributary:web-demo',
      type: 'example.order.quote.requested',
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data: { orderId, customerId: `customer-${user}`, lines: [{ sku: 'SKU-42', qty: 3 }], currency: 'EUR' },
    };
    const li = item('replies', 'sent', 'waiting', `quote request ${ev.id}, correlation ${corr}`);
    li.dataset.correlation = corr;
    pending.set(corr, li);
    client.publish(`events/order/${orderId}`, JSON.stringify(ev), {
      qos: 1,
      properties: { responseTopic: topics.replies, correlationData: new TextEncoder().encode(corr) },
    }, (err) => {
      if (err) setState(li, 'rejected', err.code !== undefined ? `rejected 0x${err.code.toString(16)}` : 'not sent');
    });
  });

  // for tests and the curious: window.tributaryDemo.client is the mqtt.js client
  window.tributaryDemo = { client, clientId, user, signedIn, topics };
}());
