// The demo page (web/) signed in (driven by tests/integration/ws-jwt.sh): the
// token is an HttpOnly cookie the page cannot read; the page learns its user
// from /whoami, connects to /mqtt without credentials, and the broker (auth
// on, no anonymous clients) takes it as the token's sub: its subscriptions
// are granted and its event is accepted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = `http://127.0.0.1:${process.env.HTTP_PORT}`;
const profile = mkdtempSync(join(tmpdir(), 'tributary-chromium-'));
let ctx;

after(async () => {
  await ctx?.close();
  rmSync(profile, { recursive: true, force: true });
});

test('signed in with an HttpOnly cookie: connects as the token\'s sub, never sees the token', async () => {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  await ctx.addCookies([{ name: 'access_token', value: process.env.ALICE_TOKEN, url: base, httpOnly: true, sameSite: 'Strict' }]);
  const page = await ctx.newPage();
  await page.goto(`${base}/?user=mallory`);
  await page.waitForSelector('#status[data-state=connected]', { timeout: 15000 });
  assert.equal(await page.textContent('#user'), 'alice', 'the user is the token\'s, not the query\'s');
  const seen = await page.evaluate(() => ({
    cookie: document.cookie,
    username: window.tributaryDemo.client.options.username,
    password: window.tributaryDemo.client.options.password,
    signedIn: window.tributaryDemo.signedIn,
  }));
  assert.equal(seen.signedIn, true);
  assert.ok(!seen.cookie.includes('access_token'), 'page code cannot read the token');
  assert.equal(seen.username, undefined);
  assert.equal(seen.password, undefined);
  await page.click('#btn-valid');
  await page.waitForSelector('#events li[data-state=accepted]', { timeout: 15000 });
  assert.notEqual(await page.getAttribute('#status', 'data-state'), 'error', await page.textContent('#status'));
});
