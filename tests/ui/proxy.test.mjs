// Real-browser test of the edge proxy (`serve.proxy`): the whole journey runs through the proxy's origin, as
// users deploy it (`serve.public.base_url` is the proxy's URL).
//
// The script starts its own upstream (Node's `http` module) on --upstream-port, which the access rule of
// tests/ui/run.sh protects (`/app/<.*>`, `cookie_session`, `header` mutator with the `portcullis` preset,
// `redirect` error handler for HTML clients). The upstream answers /app/* with an HTML page listing the headers
// it received (anything else with a 404) and records every request, so the test can check what the proxy let
// through. Then, in a fresh headless Chromium context (Debian's /usr/bin/chromium through playwright-core), once
// with JavaScript enabled and once with it disabled:
//   1. sign up through the proxy's built-in UI and sign out again (the journey below starts anonymous);
//   2. an anonymous visit of /app/dashboard?tab=2 is redirected to the sign-in page; the upstream sees nothing;
//   3. signing in there comes back to /app/dashboard?tab=2, served by the upstream with X-User-Id set to the
//      identity and, as the address is not verified, X-User-Email empty and X-User-Email-Verified: false;
//   4. identity headers sent by the client (X-User-Id, X-Auth-Request-Email) do not reach the upstream;
//   5. after signing out (the logout URL of GET /self-service/logout/browser), /app/ is behind the login again.
//
// Usage: node tests/ui/proxy.test.mjs --proxy http://127.0.0.1:PORT --admin http://127.0.0.1:PORT
//          --upstream-port PORT --screenshots DIR [--chromium /usr/bin/chromium] [--only js|nojs]
// The server must run with --dev (plain-http cookies), the registration `session` hook and the rule above; see
// tests/ui/run.sh, which starts one and runs this script.
// Screenshots: DIR/proxy-<mode>-<nn>-<step>.png, e.g. proxy-js-03-upstream-dashboard.png; on a failure also
// DIR/proxy-<mode>-failure.png. Exits non-zero on the first failure of a mode, naming the mode and step.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { BrowserRun } from './browser-run.mjs';

const { values: args } = parseArgs({
  options: {
    proxy: { type: 'string' },
    admin: { type: 'string' },
    'upstream-port': { type: 'string' },
    screenshots: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    only: { type: 'string' },
  },
});
if (!args.proxy || !args.admin || !args['upstream-port'] || !args.screenshots) {
  console.error(
    'usage: node proxy.test.mjs --proxy URL --admin URL --upstream-port PORT --screenshots DIR [--chromium PATH] [--only js|nojs]',
  );
  process.exit(2);
}
const PROXY = args.proxy.replace(/\/+$/, '');
const PROXY_ORIGIN = new URL(PROXY).origin;
const ADMIN = args.admin.replace(/\/+$/, '');
const UPSTREAM_PORT = Number(args['upstream-port']);
const SHOTS = args.screenshots;
if (!existsSync(args.chromium)) {
  console.error(`proxy: Chromium not found at ${args.chromium} (install it with: apt-get install -y chromium)`);
  process.exit(2);
}

const PASSWORD = 'correct horse battery staple';
// The protected page the anonymous browser asks for; it must come back to exactly this after signing in.
const TARGET = `${PROXY}/app/dashboard?tab=2`;
const TARGET_PATH = '/app/dashboard?tab=2';
const ACTION_TIMEOUT = 10_000;
const NAV_TIMEOUT = 15_000;

const MODES = [
  { key: 'js', title: 'JavaScript enabled', javaScriptEnabled: true },
  { key: 'nojs', title: 'JavaScript disabled', javaScriptEnabled: false },
].filter((m) => !args.only || m.key === args.only);

// Start from a clean screenshot directory (only our own files are removed).
mkdirSync(SHOTS, { recursive: true });
for (const f of readdirSync(SHOTS)) {
  if (/^proxy-.*\.png$/.test(f)) rmSync(join(SHOTS, f));
}

// ---- The upstream: an app with no login of its own, which trusts the proxy's identity headers. ----

/** Every request the upstream received, in order: { method, url, headers (lower-case names), raw }. */
const upstreamRequests = [];

const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const upstream = createServer((req, res) => {
  // rawHeaders keeps repeated fields apart (req.headers joins most of them with ", ").
  const raw = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) raw.push([req.rawHeaders[i].toLowerCase(), req.rawHeaders[i + 1]]);
  upstreamRequests.push({ method: req.method, url: req.url, headers: req.headers, raw });
  req.resume(); // a body, if any, is not needed
  const rows = raw.map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('\n');
  const found = req.url.startsWith('/app/');
  res.writeHead(found ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Upstream app</title></head>
<body><main>
<h1>${found ? 'Upstream app' : 'Not found'}</h1>
<p>Request: <code id="request">${escapeHtml(`${req.method} ${req.url}`)}</code></p>
<table id="headers">
${rows}
</table>
</main></body></html>
`);
});

/** The values of header `name` in a recorded request (one entry per field line). */
function headerValues(rec, name) {
  return rec.raw.filter(([k]) => k === name).map(([, v]) => v);
}

function describeRequests(list) {
  return list.length === 0
    ? '(none)'
    : list.map((r) => `${r.method} ${r.url} ${JSON.stringify(Object.fromEntries(r.raw.filter(([k]) => k.startsWith('x-'))))}`).join('\n    ');
}

// ---- The browser side. ----

/** One test run in one browser context (a mode). */
class Run extends BrowserRun {
  constructor(mode, context, page) {
    super(mode, context, page, { prefix: 'proxy', shots: SHOTS });
    this.identityId = null;
  }

  /** Asserts that the browser is on the proxy's origin at `pathname`. */
  assertOnProxy(pathname) {
    const url = new URL(this.page.url());
    assert.equal(url.origin, PROXY_ORIGIN, `expected to stay on the proxy's origin, but the browser is on ${this.page.url()}`);
    assert.equal(url.pathname, pathname, `expected to be on ${pathname}, but the browser is on ${this.page.url()}`);
  }

  /** Asserts the sign-in page of a fresh flow (/ui/login?flow=…) on the proxy's origin; returns the flow id. */
  async assertSignInPage() {
    this.assertOnProxy('/ui/login');
    const flow = new URL(this.page.url()).searchParams.get('flow');
    assert.ok(flow, `the sign-in URL has no ?flow=: ${this.page.url()}`);
    await this.assertHeading('Sign in');
    await this.identifierInput().waitFor({ state: 'visible' });
    return flow;
  }

  /** Runs `action` (a click) and waits until the main frame has committed and loaded a new document. */
  async navigates(action) {
    const page = this.page;
    const committed = page.waitForEvent('framenavigated', {
      predicate: (frame) => frame === page.mainFrame(),
      timeout: NAV_TIMEOUT,
    });
    await action();
    await committed;
    await page.waitForLoadState('load');
  }

  /** GET /sessions/whoami through the proxy with the context's cookies: { status, body }. */
  async whoami() {
    const res = await this.page.request.get(`${PROXY}/sessions/whoami`, {
      headers: { Accept: 'application/json' },
      failOnStatusCode: false,
    });
    return { status: res.status(), body: res.ok() ? await res.json() : await res.text() };
  }

  /** The identifier input of the sign-in form, found by its label ("E-Mail" or "ID"). */
  identifierInput() {
    return this.page.getByLabel(/^(E-Mail|ID)$/);
  }

  signInButton() {
    return this.page.getByRole('button', { name: /^Sign in\b/ });
  }

  /** The redirects of the navigation that produced `response`, e.g. "302 http://…/app/x -> 303 http://… -> 200 http://…". */
  static redirectChain(response) {
    const hops = [];
    for (let req = response.request().redirectedFrom(); req; req = req.redirectedFrom()) hops.unshift(req);
    return hops;
  }
}

/** The upstream requests recorded since `mark` (an index into upstreamRequests). */
const requestsSince = (mark) => upstreamRequests.slice(mark);

/**
 * An anonymous visit of the protected TARGET: redirected to the sign-in page on the proxy's origin, whose flow
 * remembers TARGET as its return_to, and the upstream receives nothing. Returns the flow id.
 */
async function assertAnonymousVisitIsSentToSignIn(run) {
  const page = run.page;
  const mark = upstreamRequests.length;
  const res = await page.goto(TARGET);
  assert.ok(res, `no response for ${TARGET}`);
  const hops = Run.redirectChain(res);
  const chain = [...hops.map((r) => r.url()), page.url()].join(' -> ');
  run.log(`  redirects: ${chain}`);
  assert.equal(res.status(), 200, `final response status for ${TARGET} (redirects: ${chain})`);
  const flow = await run.assertSignInPage();
  // First hop: the rule's redirect error handler, to the login endpoint on the proxy's origin with return_to.
  assert.ok(hops.length >= 2, `expected at least two redirects (error handler, then login flow): ${chain}`);
  const first = await hops[0].response();
  assert.ok(first && [301, 302, 303, 307, 308].includes(first.status()), `the first answer for ${TARGET} is not a redirect`);
  const login = new URL(first.headers()['location'], TARGET);
  assert.equal(`${login.origin}${login.pathname}`, `${PROXY}/self-service/login/browser`, `the error handler redirects to ${login}`);
  assert.equal(login.searchParams.get('return_to'), TARGET, `the error handler's return_to (${login})`);
  // The flow kept the return_to (it would be refused with a 400 otherwise).
  const flowRes = await page.request.get(`${PROXY}/self-service/login/flows?id=${encodeURIComponent(flow)}`, {
    headers: { Accept: 'application/json' },
    failOnStatusCode: false,
  });
  assert.equal(flowRes.status(), 200, `GET /self-service/login/flows?id=${flow} through the proxy: ${await flowRes.text()}`);
  assert.equal((await flowRes.json()).return_to, TARGET, 'the login flow lost or changed the return_to');
  assert.deepEqual(requestsSince(mark), [], `the upstream was reached by an anonymous browser:\n    ${describeRequests(requestsSince(mark))}`);
  return flow;
}

async function runMode(browser, mode) {
  const context = await browser.newContext({
    javaScriptEnabled: mode.javaScriptEnabled,
    viewport: { width: 1024, height: 768 },
    colorScheme: 'light',
    locale: 'en-US',
  });
  context.setDefaultTimeout(ACTION_TIMEOUT);
  context.setDefaultNavigationTimeout(NAV_TIMEOUT);
  const page = await context.newPage();
  const run = new Run(mode, context, page);
  console.log(`== proxy, ${mode.title} (${mode.key}), user ${run.email}`);

  try {
    await run.step(`the context really has JavaScript ${mode.javaScriptEnabled ? 'enabled' : 'disabled'}`, async () => {
      const probe = await context.newPage();
      try {
        await probe.setContent('<p id="probe">static</p><script>document.getElementById("probe").textContent = "scripted"</script>');
        const expected = mode.javaScriptEnabled ? 'scripted' : 'static';
        assert.equal(await probe.locator('#probe').innerText(), expected, 'page scripts do not match the mode');
      } finally {
        await probe.close();
      }
    });

    await run.step('sign up through the proxy: /self-service/registration/browser -> /ui/registration -> welcome', async () => {
      const res = await page.goto(`${PROXY}/self-service/registration/browser`);
      assert.ok(res, 'no response for /self-service/registration/browser');
      assert.equal(res.status(), 200, `final response status for /self-service/registration/browser -> ${page.url()}`);
      run.assertOnProxy('/ui/registration');
      assert.ok(new URL(page.url()).searchParams.get('flow'), 'the registration URL has no ?flow=');
      await run.assertHeading('Create an account');
      await page.getByLabel('E-Mail', { exact: true }).fill(run.email);
      await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
      await run.navigates(() => page.getByRole('button', { name: 'Sign up' }).click());
      run.assertOnProxy('/ui/welcome');
      await run.screenshot('signed-up');
    });

    await run.step('the new session is visible through the proxy (/sessions/whoami) and the admin API', async () => {
      const who = await run.whoami();
      assert.equal(who.status, 200, `GET /sessions/whoami through the proxy after sign-up: ${JSON.stringify(who.body)}`);
      run.identityId = who.body?.identity?.id;
      assert.ok(run.identityId, `whoami has no identity.id: ${JSON.stringify(who.body)}`);
      assert.equal(who.body.identity.traits?.email, run.email, 'whoami names another e-mail');
      const res = await fetch(`${ADMIN}/admin/identities/${run.identityId}`, { signal: AbortSignal.timeout(ACTION_TIMEOUT) });
      assert.equal(res.status, 200, `GET ${ADMIN}/admin/identities/${run.identityId}`);
      assert.equal((await res.json()).traits?.email, run.email, 'the admin API names another e-mail');
      run.log(`  identity ${run.identityId}`);
    });

    await run.step('sign out through the proxy (/ui/logout, "Sign out"): the browser is anonymous again', async () => {
      await page.goto(`${PROXY}/ui/logout`);
      run.assertOnProxy('/ui/logout');
      await run.assertHeading('Sign out');
      await run.navigates(() => page.getByRole('button', { name: 'Sign out' }).click());
      await run.assertSignInPage();
      const who = await run.whoami();
      assert.equal(who.status, 401, `GET /sessions/whoami through the proxy after signing out: ${JSON.stringify(who.body)}`);
    });

    await run.step(`anonymous: ${TARGET_PATH} redirects to the sign-in page; the upstream sees no request`, async () => {
      await assertAnonymousVisitIsSentToSignIn(run);
      await run.screenshot('sign-in-for-app');
    });

    await run.step(`sign in there: back on ${TARGET_PATH}, served by the upstream with the identity's headers`, async () => {
      const mark = upstreamRequests.length;
      await run.identifierInput().fill(run.email);
      await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
      await run.navigates(() => run.signInButton().click());
      assert.equal(page.url(), TARGET, 'the browser did not come back to the page it asked for');
      await run.assertHeading('Upstream app');
      assert.equal((await page.locator('#request').innerText()).trim(), `GET ${TARGET_PATH}`, 'the upstream page names another request');
      await run.screenshot('upstream-dashboard');
      const seen = requestsSince(mark).filter((r) => r.url === TARGET_PATH);
      assert.equal(seen.length, 1, `expected the upstream to get ${TARGET_PATH} once; it got:\n    ${describeRequests(requestsSince(mark))}`);
      assert.deepEqual(headerValues(seen[0], 'x-user-id'), [run.identityId], 'X-User-Id at the upstream');
      // The address was never verified: the preset withholds it and says so (require_verified_email).
      assert.deepEqual(headerValues(seen[0], 'x-user-email'), [''], 'X-User-Email of an unverified address');
      assert.deepEqual(headerValues(seen[0], 'x-user-email-verified'), ['false'], 'X-User-Email-Verified at the upstream');
      // The page the browser shows is that answer (it lists the headers the upstream got).
      await page.locator('#headers').getByText(run.identityId, { exact: true }).waitFor({ state: 'visible' });
      const who = await run.whoami();
      assert.equal(who.status, 200, 'GET /sessions/whoami through the proxy after signing in');
      assert.equal(who.body.identity?.id, run.identityId, 'signed in as another identity');
    });

    await run.step('spoofed X-User-Id / X-Auth-Request-Email from the client do not reach the upstream', async () => {
      const mark = upstreamRequests.length;
      const spoofed = { 'X-User-Id': 'admin', 'X-Auth-Request-Email': 'boss@example.com' };
      if (mode.javaScriptEnabled) {
        // A script on the signed-in page, same origin, with the session cookie. It reads the whole answer, so
        // that the request is complete before the page moves on.
        const { status, body } = await page.evaluate(async (headers) => {
          const res = await fetch('/app/echo', { headers });
          return { status: res.status, body: await res.text() };
        }, spoofed);
        assert.equal(status, 200, 'fetch("/app/echo") status');
        assert.ok(body.includes('GET /app/echo'), `fetch("/app/echo") did not get the upstream's page: ${body.slice(0, 300)}`);
      } else {
        // No scripts: a navigation that carries the extra headers.
        await page.setExtraHTTPHeaders(spoofed);
        try {
          const res = await page.goto(`${PROXY}/app/echo`);
          assert.equal(res?.status(), 200, 'GET /app/echo status');
        } finally {
          await page.setExtraHTTPHeaders({});
        }
        await run.screenshot('upstream-echo');
      }
      const seen = requestsSince(mark).filter((r) => r.url === '/app/echo');
      assert.equal(seen.length, 1, `expected the upstream to get /app/echo once; it got:\n    ${describeRequests(requestsSince(mark))}`);
      assert.deepEqual(headerValues(seen[0], 'x-user-id'), [run.identityId], 'X-User-Id at the upstream (spoofed "admin"?)');
      assert.deepEqual(headerValues(seen[0], 'x-user-email'), [''], 'X-User-Email of an unverified address');
      assert.deepEqual(headerValues(seen[0], 'x-auth-request-email'), [], 'the client-sent X-Auth-Request-Email reached the upstream');
    });

    await run.step('sign out with the logout_url of GET /self-service/logout/browser (through the proxy)', async () => {
      const res = await page.request.get(`${PROXY}/self-service/logout/browser`, {
        headers: { Accept: 'application/json' },
        failOnStatusCode: false,
      });
      const text = await res.text();
      assert.equal(res.status(), 200, `GET /self-service/logout/browser through the proxy: ${text}`);
      const logoutUrl = JSON.parse(text).logout_url;
      assert.ok(logoutUrl, `no logout_url in ${text}`);
      assert.equal(new URL(logoutUrl).origin, PROXY_ORIGIN, `the logout_url is not on the proxy's origin: ${logoutUrl}`);
      await page.goto(logoutUrl);
      await run.assertSignInPage();
      const who = await run.whoami();
      assert.equal(who.status, 401, `GET /sessions/whoami through the proxy after signing out: ${JSON.stringify(who.body)}`);
      await run.screenshot('signed-out');
    });

    await run.step(`signed out: ${TARGET_PATH} redirects to the sign-in page again; the upstream sees no request`, async () => {
      await assertAnonymousVisitIsSentToSignIn(run);
      await run.screenshot('sign-in-again');
    });

    await run.step('no console errors, page errors or failed sub-resources', async () => {
      assert.deepEqual(run.problems, [], 'problems seen while browsing');
    });
    return true;
  } catch (err) {
    console.error(`\nFAIL [proxy ${mode.key}] step "${run.currentStep}"`);
    console.error(`  at URL: ${page.url()}`);
    console.error(`  ${(err && err.message) || err}`.replace(/\n/g, '\n  '));
    if (run.problems.length) console.error(`  also seen: ${run.problems.join('; ')}`);
    console.error(`  upstream requests so far:\n    ${describeRequests(upstreamRequests)}`);
    try {
      const file = join(SHOTS, `proxy-${mode.key}-failure.png`);
      await page.screenshot({ path: file, fullPage: true, timeout: 5_000 });
      console.error(`  screenshot of the failure: ${file}`);
      const main = await page.locator('body').innerText({ timeout: 2_000 });
      console.error(`  page text:\n    ${main.trim().slice(0, 1500).replace(/\n/g, '\n    ')}`);
    } catch {
      // best effort
    }
    return false;
  } finally {
    await context.close();
  }
}

const started = Date.now();
await new Promise((resolve, reject) => {
  upstream.once('error', (e) => reject(new Error(`proxy: the upstream cannot listen on 127.0.0.1:${UPSTREAM_PORT}: ${e.message}`)));
  upstream.listen(UPSTREAM_PORT, '127.0.0.1', resolve);
});
let passed = 0;
let failed = 0;
try {
  const browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    args: ['--no-sandbox'],
  });
  try {
    console.log(`proxy: Chromium ${browser.version()}, testing ${PROXY} (upstream on port ${UPSTREAM_PORT}), screenshots in ${SHOTS}`);
    for (const mode of MODES) {
      if (await runMode(browser, mode)) passed += 1;
      else failed += 1;
    }
  } finally {
    await browser.close();
  }
} finally {
  upstream.closeAllConnections();
  upstream.close();
}
console.log(`proxy: ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
