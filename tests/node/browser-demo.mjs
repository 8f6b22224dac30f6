// The demo page in headless Chromium, served by nginx with the module:
// it loads (SPA fallback, MIME types, precompressed files), connects over
// /mqtt with MQTT 5, and — with the plugin (PLUGIN=1) — its valid event
// reaches Kafka, its invalid one comes back as a rejection with the
// validator's errors, a notification produced into Kafka shows up, and (with
// the responder) a quote request gets its reply.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';
import { kafkaRecords, kafkaProduce, waitFor } from './lib.mjs';

const base = `http://127.0.0.1:${process.env.HTTP_PORT || 28080}`;
const withPlugin = process.env.PLUGIN === '1';
const withResponder = process.env.RESPONDER === '1';
const user = `u-${randomUUID().slice(0, 8)}`;
let ctx, page, profile;
const consoleErrors = [];

before(async () => {
  profile = mkdtempSync(join(tmpdir(), 'tributary-chromium-'));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
});

after(async () => {
  await ctx?.close();
  if (profile && existsSync(profile)) rmSync(profile, { recursive: true, force: true });
});

test('static hosting: SPA fallback, MIME types, gzip_static, cache headers', async () => {
  const r = await fetch(`${base}/orders/42/edit`);
  assert.equal(r.status, 200);
  assert.match(await r.text(), /Tributary demo/, 'client-side route falls back to index.html');
  assert.equal(r.headers.get('cache-control'), 'no-cache');

  const js = await fetch(`${base}/mqtt.min.js`, { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /javascript/);
  assert.equal(js.headers.get('content-encoding'), 'gzip', 'precompressed .gz served');

  const fw = await fetch(`${base}/_framework/missing.dll`);
  assert.equal(fw.status, 404, 'a missing runtime file is a 404, not index.html');
});

test('the page connects over /mqtt with MQTT 5', async () => {
  await page.goto(`${base}/?user=${user}`);
  await page.waitForSelector('#status[data-state=connected]', { timeout: 15000 });
  assert.equal(await page.textContent('#user'), user);
  const cid = await page.textContent('#client-id');
  assert.match(cid, /^web-[0-9a-f]{8}$/);
  assert.equal(await page.evaluate(() => window.tributaryDemo.client.options.protocolVersion), 5);
  assert.ok(await page.isEnabled('#btn-valid'));
});

test('a valid event is accepted' + (withPlugin ? ' and reaches Kafka' : ' by the broker'), async () => {
  await page.click('#btn-valid');
  const li = await page.waitForSelector('#events li[data-state=accepted]', { timeout: 15000 });
  const id = await li.getAttribute('data-event-id');
  assert.match(id, /^[0-9a-f-]{36}$/);
  if (!withPlugin) return;
  let rec;
  await waitFor(async () => {
    rec = (await kafkaRecords('events.order')).find((r) => r.headers.ce_id === id);
    return rec;
  }, 20000, `event ${id} in Kafka`);
  assert.equal(rec.headers.ce_type, 'example.order.placed');
  assert.equal(rec.headers.ce_source, 'urn:tributary:web-demo');
  assert.equal(JSON.parse(rec.value).customerId, `customer-${user}`);
});

test('an invalid event shows the rejection and the validator\'s errors', { skip: !withPlugin && 'needs the plugin' }, async () => {
  await page.click('#btn-invalid');
  const li = await page.waitForSelector('#rejections li[data-event-id]', { timeout: 15000 });
  const id = await li.getAttribute('data-event-id');
  const text = await li.textContent();
  assert.match(text, /schema_validation_failed/);
  assert.match(text, /example\.order\.placed/);
  assert.match(text, /\/lines\/0\/qty/, 'the failing field is named');
  const sent = await page.getAttribute(`#events li[data-event-id="${id}"]`, 'data-state');
  assert.equal(sent, 'rejected');
  assert.equal((await kafkaRecords('events.order')).find((r) => r.headers.ce_id === id), undefined, 'not in Kafka');
});

test('a notification produced into Kafka appears', { skip: !withPlugin && 'needs the plugin' }, async () => {
  const message = `Your order shipped ${randomUUID().slice(0, 6)}`;
  await kafkaProduce('notifications', {
    key: user,
    value: JSON.stringify({
      specversion: '1.0', id: randomUUID(), source: 'urn:test:shipping', type: 'example.notification',
      datacontenttype: 'application/json', data: { message },
    }),
    headers: {},
  });
  await page.waitForSelector(`#notifications li:has-text("${message}")`, { timeout: 20000 });
});

test('a quote request gets its reply', { skip: !(withPlugin && withResponder) && 'needs the plugin and tributary-responder' }, async () => {
  await page.click('#btn-quote');
  const li = await page.waitForSelector('#replies li[data-state=accepted] >> text=example.order.quote.issued', { timeout: 20000 });
  assert.ok(li);
  assert.equal(await page.$$eval('#replies li[data-state=sent]', (l) => l.length), 0, 'no request left unanswered');
});

test('no errors in the browser console', () => {
  assert.deepEqual(consoleErrors, []);
});
