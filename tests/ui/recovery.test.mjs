// Real-browser test of account recovery in the built-in UI: "forgot password -> mail -> code -> new password ->
// signed in", with the code read from a real mail that the courier delivered over SMTP to the SMTP sink
// (tests/support/smtp_sink.py), in headless Chromium (Debian's /usr/bin/chromium through playwright-core), once
// with JavaScript enabled and once with it disabled. Per mode:
//   1. an identity with a password is created through the admin API;
//   2. /ui/login -> "Forgot your password?" -> /ui/recovery; the e-mail address is submitted;
//   3. the recovery mail arrives in the sink; a wrong code is refused on the page; a link
//      /self-service/recovery?flow=…&code=… opened in another browser ends on the error page, signed out, and in
//      this browser only fills the code in (still signed out); the button submits it and the browser lands,
//      signed in, on /ui/settings?flow=…;
//   4. the password form of the settings page sets a new password ("Your changes have been saved!");
//   5. after signing out, the old password is refused and the new one signs in to /ui/welcome.
//
// Usage: node tests/ui/recovery.test.mjs --public URL --admin URL --mail-dir DIR --screenshots DIR
//          [--chromium /usr/bin/chromium] [--only js|nojs]
// The server must run with --dev (plain-http cookies), recovery enabled (code method) and the courier's SMTP
// delivery to the sink writing to DIR; see tests/ui/run.sh, which starts both and runs this script.
// Screenshots: DIR/recovery-<mode>-<nn>-<step>.png; on a failure also DIR/recovery-<mode>-failure.png.
// Exits non-zero when a mode fails, naming the mode and step.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { BrowserRun } from './browser-run.mjs';
import { mailCode, mailMark, waitForMail } from './mail.mjs';

const { values: args } = parseArgs({
  options: {
    public: { type: 'string' },
    admin: { type: 'string' },
    'mail-dir': { type: 'string' },
    screenshots: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    only: { type: 'string' },
  },
});
if (!args.public || !args.admin || !args['mail-dir'] || !args.screenshots) {
  console.error(
    'usage: node recovery.test.mjs --public URL --admin URL --mail-dir DIR --screenshots DIR [--chromium PATH] [--only js|nojs]',
  );
  process.exit(2);
}
const PUBLIC = args.public.replace(/\/+$/, '');
const ADMIN = args.admin.replace(/\/+$/, '');
const MAIL_DIR = args['mail-dir'];
const SHOTS = args.screenshots;
if (!existsSync(args.chromium)) {
  console.error(`recovery: Chromium not found at ${args.chromium} (install it with: apt-get install -y chromium)`);
  process.exit(2);
}

const OLD_PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'a brand new horse battery staple';
const INVALID_CREDENTIALS = 'The provided credentials are invalid';
const CODE_SENT = 'An email containing a recovery code has been sent';
const CODE_INVALID = 'The recovery code is invalid or has already been used';
const RECOVERED = 'You successfully recovered your account';
const SAVED = 'Your changes have been saved!';
const MAIL_TIMEOUT = 15_000;
const ACTION_TIMEOUT = 10_000;
const NAV_TIMEOUT = 15_000;

const MODES = [
  { key: 'js', title: 'JavaScript enabled', javaScriptEnabled: true },
  { key: 'nojs', title: 'JavaScript disabled', javaScriptEnabled: false },
].filter((m) => !args.only || m.key === args.only);

// Start from a clean screenshot directory (only our own files are removed).
mkdirSync(SHOTS, { recursive: true });
for (const f of readdirSync(SHOTS)) {
  if (/^recovery-.*\.png$/.test(f)) rmSync(join(SHOTS, f));
}

/** POST /admin/identities: an identity with `email` and `password`; returns its JSON. */
async function createIdentity(email, password) {
  const res = await fetch(`${ADMIN}/admin/identities`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({
      schema_id: 'default',
      traits: { email },
      credentials: { password: { config: { password } } },
    }),
  });
  const body = await res.text();
  assert.equal(res.status, 201, `POST /admin/identities answered ${res.status}: ${body}`);
  return JSON.parse(body);
}

/** One test run in one browser context (a mode). */
class Run extends BrowserRun {
  constructor(mode, context, page) {
    super(mode, context, page, { prefix: 'recovery', shots: SHOTS });
  }

  url() {
    return new URL(this.page.url());
  }

  /** Asserts the browser is on `pathname` with a ?flow= parameter; returns the flow id. */
  assertFlowPage(pathname) {
    const url = this.url();
    assert.equal(url.pathname, pathname, `expected to be on ${pathname}, but the browser is on ${this.page.url()}`);
    const flow = url.searchParams.get('flow');
    assert.ok(flow, `${pathname} has no ?flow=: ${this.page.url()}`);
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

  async whoamiStatus() {
    const res = await this.page.request.get(`${PUBLIC}/sessions/whoami`, {
      headers: { Accept: 'application/json' },
      failOnStatusCode: false,
    });
    return res.status();
  }

  /** The text of the page's main content. */
  async mainText() {
    return (await this.page.locator('main').innerText()).replace(/\s+/g, ' ');
  }

  async assertMainContains(text, what) {
    await this.page.getByText(text, { exact: false }).first().waitFor({ state: 'visible' });
    const main = await this.mainText();
    assert.ok(main.includes(text), `${what}: the page does not say "${text}"; it says: ${main.slice(0, 600)}`);
  }

  identifierInput() {
    return this.page.getByLabel(/^(E-Mail|ID|Email)$/);
  }

  signInButton() {
    return this.page.getByRole('button', { name: /^Sign in\b/ });
  }

  async signIn(password) {
    await this.identifierInput().fill(this.email);
    await this.page.getByLabel('Password', { exact: true }).fill(password);
    await this.navigates(() => this.signInButton().click());
  }
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
  console.log(`== recovery, ${mode.title} (${mode.key}), user ${run.email}`);
  let mark = 0;
  let code = '';
  let settingsFlow = '';

  try {
    await run.step('create an identity with a password through the admin API', async () => {
      const identity = await createIdentity(run.email, OLD_PASSWORD);
      assert.equal(identity.traits.email, run.email, 'the created identity has another e-mail');
      assert.deepEqual(
        (identity.recovery_addresses || []).map((a) => a.value),
        [run.email],
        'the identity has no recovery address for its e-mail (the schema must mark it `recovery: {via: email}`)',
      );
    });

    await run.step('the sign-in page links "Forgot your password?" to the recovery page', async () => {
      await page.goto(`${PUBLIC}/ui/login`);
      run.assertFlowPage('/ui/login');
      await run.assertHeading('Sign in');
      await run.screenshot('sign-in');
      await run.navigates(() => page.getByRole('link', { name: 'Forgot your password?' }).click());
      run.assertFlowPage('/ui/recovery');
      await run.assertHeading('Recover your account');
      await run.screenshot('recovery');
    });

    await run.step('submit the e-mail address: the page asks for the code that was sent', async () => {
      mark = mailMark(MAIL_DIR);
      await page.getByLabel('Email', { exact: true }).fill(run.email);
      await run.navigates(() => page.locator('button[name="method"][value="code"]').click());
      run.assertFlowPage('/ui/recovery');
      await run.assertMainContains(CODE_SENT, 'after submitting the address');
      await page.getByLabel('Recovery code', { exact: true }).waitFor({ state: 'visible' });
      await run.screenshot('code-sent');
    });

    await run.step('the recovery mail arrives at the SMTP sink with a 6-digit code', async () => {
      const mail = await waitForMail(MAIL_DIR, run.email, { after: mark, timeout: MAIL_TIMEOUT });
      code = mailCode(mail);
      assert.ok(code, `no 6-digit code in the mail "${mail.subject}": ${mail.text}`);
      run.log(`  mail #${mail.seq} "${mail.subject}" from ${mail.from}, code ${code}`);
    });

    await run.step('a wrong code is refused on the recovery page', async () => {
      const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
      await page.getByLabel('Recovery code', { exact: true }).fill(wrong);
      await run.navigates(() => page.locator('button[name="method"][value="code"]').click());
      run.assertFlowPage('/ui/recovery');
      await run.assertMainContains(CODE_INVALID, 'after a wrong code');
      assert.equal(await run.whoamiStatus(), 401, 'GET /sessions/whoami after a wrong code');
      await run.screenshot('wrong-code');
    });

    await run.step('a link with the code only fills it in: another browser is refused, this one is not signed in yet', async () => {
      const flow = run.assertFlowPage('/ui/recovery');
      const link = `${PUBLIC}/self-service/recovery?flow=${flow}&code=${code}`;
      // Another browser (a victim opening someone else's link): an error page, no session, the code stays usable.
      const other = await browser.newContext({ javaScriptEnabled: mode.javaScriptEnabled });
      try {
        const otherPage = await other.newPage();
        await otherPage.goto(link);
        assert.equal(new URL(otherPage.url()).pathname, '/ui/error', `another browser opened the link and is on ${otherPage.url()}`);
        const res = await otherPage.request.get(`${PUBLIC}/sessions/whoami`, { failOnStatusCode: false });
        assert.equal(res.status(), 401, 'GET /sessions/whoami in the other browser after opening the link');
      } finally {
        await other.close();
      }
      // This browser: the recovery page with the code in the field, and still signed out.
      await page.goto(link);
      assert.equal(run.assertFlowPage('/ui/recovery'), flow, 'the link opened another flow');
      const value = await page.getByLabel('Recovery code', { exact: true }).inputValue();
      assert.equal(value, code, 'the code from the link is not filled in');
      assert.equal(await run.whoamiStatus(), 401, 'GET /sessions/whoami after opening the link');
      await run.screenshot('code-from-link');
    });

    await run.step('the code from the mail signs in and lands on the settings page', async () => {
      assert.equal(await page.getByLabel('Recovery code', { exact: true }).inputValue(), code);
      await run.navigates(() => page.locator('button[name="method"][value="code"]').click());
      settingsFlow = run.assertFlowPage('/ui/settings');
      await run.assertMainContains(RECOVERED, 'the settings page after recovery');
      assert.equal(await run.whoamiStatus(), 200, 'GET /sessions/whoami after recovery');
      await page.locator('input[name="password"]').waitFor({ state: 'visible' });
      await run.screenshot('settings-after-recovery');
    });

    await run.step('set a new password in the settings page', async () => {
      await page.locator('input[name="password"]').fill(NEW_PASSWORD);
      await run.navigates(() => page.locator('button[name="method"][value="password"]').click());
      const flow = run.assertFlowPage('/ui/settings');
      assert.equal(flow, settingsFlow, 'saving the password moved to another settings flow');
      await run.assertMainContains(SAVED, 'after saving the password');
      const value = await page.locator('input[name="password"]').inputValue();
      assert.equal(value, '', 'the new password was echoed back into the page');
      await run.screenshot('password-saved');
    });

    await run.step('sign out from the welcome page', async () => {
      await page.goto(`${PUBLIC}/ui/welcome`);
      assert.equal(run.url().pathname, '/ui/welcome', `expected the welcome page, got ${page.url()}`);
      assert.equal((await page.locator('.pc-identity').innerText()).trim(), run.email, 'the welcome page shows the wrong user');
      await run.navigates(() => page.getByRole('link', { name: 'Sign out' }).click());
      assert.equal(run.url().pathname, '/ui/logout');
      await run.navigates(() => page.getByRole('button', { name: 'Sign out' }).click());
      run.assertFlowPage('/ui/login');
      assert.equal(await run.whoamiStatus(), 401, 'GET /sessions/whoami after signing out');
    });

    await run.step('the old password no longer signs in', async () => {
      await run.signIn(OLD_PASSWORD);
      run.assertFlowPage('/ui/login');
      const alert = page.getByRole('alert');
      await alert.waitFor({ state: 'visible' });
      const text = (await alert.innerText()).trim();
      assert.ok(text.includes(INVALID_CREDENTIALS), `the alert says "${text}"`);
      assert.equal(await run.whoamiStatus(), 401, 'GET /sessions/whoami after the old password');
      await run.screenshot('old-password-refused');
    });

    await run.step('the new password signs in to the welcome page', async () => {
      await run.signIn(NEW_PASSWORD);
      assert.equal(run.url().pathname, '/ui/welcome', `expected the welcome page, got ${page.url()}`);
      const who = page.locator('.pc-identity');
      await who.waitFor({ state: 'visible' });
      assert.equal((await who.innerText()).trim(), run.email, 'the welcome page shows the wrong user');
      assert.equal(await run.whoamiStatus(), 200, 'GET /sessions/whoami after signing in');
      await run.screenshot('welcome');
    });

    await run.step('no console errors, page errors or failed sub-resources', async () => {
      assert.deepEqual(run.problems, [], 'problems seen while browsing');
    });
    return true;
  } catch (err) {
    console.error(`\nFAIL [recovery ${mode.key}] step "${run.currentStep}"`);
    console.error(`  at URL: ${page.url()}`);
    console.error(`  ${(err && err.message) || err}`.replace(/\n/g, '\n  '));
    if (run.problems.length) console.error(`  also seen: ${run.problems.join('; ')}`);
    try {
      const file = join(SHOTS, `recovery-${mode.key}-failure.png`);
      await page.screenshot({ path: file, fullPage: true, timeout: 5_000 });
      console.error(`  screenshot of the failure: ${file}`);
      const text = await page.locator('body').innerText({ timeout: 2_000 });
      console.error(`  page text:\n    ${text.trim().slice(0, 1500).replace(/\n/g, '\n    ')}`);
    } catch {
      // best effort
    }
    return false;
  } finally {
    await context.close();
  }
}

const started = Date.now();
const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  args: ['--no-sandbox'],
});
let passed = 0;
let failed = 0;
try {
  console.log(`recovery: Chromium ${browser.version()}, testing ${PUBLIC}, mails from ${MAIL_DIR}, screenshots in ${SHOTS}`);
  for (const mode of MODES) {
    if (await runMode(browser, mode)) passed += 1;
    else failed += 1;
  }
} finally {
  await browser.close();
}
console.log(`recovery: ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
