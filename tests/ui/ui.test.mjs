// Real-browser test of Portcullis' built-in, server-rendered self-service UI (/ui/*).
//
// Drives headless Chromium (Debian's /usr/bin/chromium through playwright-core) through sign-up,
// sign-out and sign-in, once with JavaScript enabled and once with it disabled (the UI must work
// without JS), and saves a screenshot of every page it checks.
//
// Usage: node tests/ui/ui.test.mjs --public http://127.0.0.1:PORT --screenshots DIR
//          [--chromium /usr/bin/chromium] [--only js|nojs]
// The server must run with --dev (plain-http cookies) and the registration `session` hook; see
// tests/ui/run.sh, which starts one and runs this script.
// Screenshots: DIR/<mode>-<nn>-<step>.png, e.g. js-01-sign-in.png, nojs-04-welcome.png; on a failure
// also DIR/<mode>-failure.png. Exits non-zero on the first failure, naming the mode and step.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { BrowserRun } from './browser-run.mjs';

const { values: args } = parseArgs({
  options: {
    public: { type: 'string' },
    screenshots: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    only: { type: 'string' },
  },
});
if (!args.public || !args.screenshots) {
  console.error('usage: node ui.test.mjs --public URL --screenshots DIR [--chromium PATH] [--only js|nojs]');
  process.exit(2);
}
const PUBLIC = args.public.replace(/\/+$/, '');
const SHOTS = args.screenshots;
if (!existsSync(args.chromium)) {
  console.error(`ui: Chromium not found at ${args.chromium} (install it with: apt-get install -y chromium)`);
  process.exit(2);
}

const PASSWORD = 'correct horse battery staple';
const SHORT_PASSWORD = 'short';
const WRONG_PASSWORD = 'wrong horse battery staple';
const INVALID_CREDENTIALS = 'The provided credentials are invalid';
const ACTION_TIMEOUT = 10_000;
const NAV_TIMEOUT = 15_000;

const MODES = [
  { key: 'js', title: 'JavaScript enabled', javaScriptEnabled: true },
  { key: 'nojs', title: 'JavaScript disabled', javaScriptEnabled: false },
].filter((m) => !args.only || m.key === args.only);

// Start from a clean screenshot directory (only our own files are removed).
mkdirSync(SHOTS, { recursive: true });
for (const f of readdirSync(SHOTS)) {
  if (/^(js|nojs)-.*\.png$/.test(f)) rmSync(join(SHOTS, f));
}

class StepError extends Error {}

/** One test run in one browser context (a mode). */
class Run extends BrowserRun {
  constructor(mode, context, page) {
    super(mode, context, page, { prefix: 'ui', shots: SHOTS });
  }

  path() {
    return new URL(this.page.url()).pathname;
  }

  assertPath(expected) {
    assert.equal(this.path(), expected, `expected to be on ${expected}, but the browser is on ${this.page.url()}`);
  }

  async assertSignedInAs(email) {
    this.assertPath('/ui/welcome');
    const who = this.page.locator('.pc-identity');
    await who.waitFor({ state: 'visible' });
    assert.equal((await who.innerText()).trim(), email, 'the welcome page shows the wrong user');
    const lead = await this.page.locator('main').innerText();
    assert.match(lead, new RegExp(`Signed in as\\s+${email.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
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

  /** The identifier input of the sign-in form, found by its label ("E-Mail" or "ID"). */
  identifierInput() {
    return this.page.getByLabel(/^(E-Mail|ID)$/);
  }

  signInButton() {
    return this.page.getByRole('button', { name: /^Sign in\b/ });
  }
}

/** The password field error checks shared by the flows: aria-invalid and aria-describedby. */
async function assertFieldError(run, input, textPattern) {
  const page = run.page;
  assert.equal(await input.getAttribute('aria-invalid'), 'true', 'the invalid input lacks aria-invalid="true"');
  const describedBy = (await input.getAttribute('aria-describedby')) ?? '';
  const ids = describedBy.split(/\s+/).filter(Boolean);
  assert.ok(ids.length > 0, 'the invalid input has no aria-describedby');
  const texts = [];
  for (const id of ids) {
    const el = page.locator(`[id="${id}"]`);
    assert.equal(await el.count(), 1, `aria-describedby names id "${id}", which is not exactly one element`);
    texts.push({ el, text: (await el.innerText()).trim() });
  }
  const hit = texts.find((t) => textPattern.test(t.text));
  assert.ok(
    hit,
    `no element named by aria-describedby="${describedBy}" contains ${textPattern}; they contain: ${JSON.stringify(texts.map((t) => t.text))}`,
  );
  assert.ok(await hit.el.isVisible(), 'the field error message is not visible');
  // "Near the field": the message sits just below the input, inside the same field block.
  const [ib, mb] = [await input.boundingBox(), await hit.el.boundingBox()];
  assert.ok(ib && mb, 'could not measure the input or its error message');
  assert.ok(
    mb.y >= ib.y + ib.height - 1 && mb.y - (ib.y + ib.height) < 48,
    `the error message is not right below its input (input ${JSON.stringify(ib)}, message ${JSON.stringify(mb)})`,
  );
  return hit.text;
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
  console.log(`== ${mode.title} (${mode.key}), user ${run.email}`);

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

    await run.step('signed out: /ui/welcome redirects to the sign-in page', async () => {
      const res = await page.goto(`${PUBLIC}/ui/welcome`);
      assert.ok(res, 'no response for /ui/welcome');
      assert.equal(res.status(), 200, `final response status for /ui/welcome -> ${page.url()}`);
      run.assertPath('/ui/login');
      assert.ok(new URL(page.url()).searchParams.get('flow'), 'the sign-in URL has no ?flow=');
      await run.assertHeading('Sign in');
      await run.identifierInput().waitFor({ state: 'visible' });
      await page.getByLabel('Password', { exact: true }).waitFor({ state: 'visible' });
      await run.signInButton().waitFor({ state: 'visible' });
      await run.screenshot('sign-in');
    });

    await run.step('follow "Create one" to the registration page', async () => {
      await run.navigates(() => page.getByRole('link', { name: /Create one/ }).click());
      run.assertPath('/ui/registration');
      await run.assertHeading('Create an account');
      await run.screenshot('registration');
    });

    await run.step(`sign up with a too short password ("${SHORT_PASSWORD}") is refused next to the field`, async () => {
      await page.getByLabel('E-Mail', { exact: true }).fill(run.email);
      await page.getByLabel('Password', { exact: true }).fill(SHORT_PASSWORD);
      await run.navigates(() => page.getByRole('button', { name: 'Sign up' }).click());
      run.assertPath('/ui/registration');
      await run.assertHeading('Create an account');
      const password = page.getByLabel('Password', { exact: true });
      const text = await assertFieldError(run, password, /password|characters|short/i);
      run.log(`  password error: "${text}"`);
      assert.equal(
        await page.getByLabel('E-Mail', { exact: true }).inputValue(),
        run.email,
        'the e-mail typed before the error was not kept in the form',
      );
      assert.equal(await password.inputValue(), '', 'the password was echoed back into the page');
      await run.screenshot('registration-error');
    });

    await run.step('sign up with a good password lands on the welcome page', async () => {
      // Fill the e-mail again in case it was not kept (checked above, but keep this step independent).
      await page.getByLabel('E-Mail', { exact: true }).fill(run.email);
      await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
      await run.navigates(() => page.getByRole('button', { name: 'Sign up' }).click());
      await run.assertSignedInAs(run.email);
      assert.equal(await run.whoamiStatus(), 200, 'GET /sessions/whoami right after sign-up');
      await run.screenshot('welcome');
    });

    await run.step('"Sign out" link opens the logout confirmation page', async () => {
      await run.navigates(() => page.getByRole('link', { name: 'Sign out' }).click());
      run.assertPath('/ui/logout');
      await run.assertHeading('Sign out');
      await run.screenshot('logout-confirm');
    });

    await run.step('"Sign out" button signs out and ends on the sign-in page; whoami is 401', async () => {
      await run.navigates(() => page.getByRole('button', { name: 'Sign out' }).click());
      run.assertPath('/ui/login');
      await run.assertHeading('Sign in');
      assert.equal(await run.whoamiStatus(), 401, 'GET /sessions/whoami after signing out');
      await run.screenshot('signed-out');
    });

    await run.step('sign in with a wrong password shows an alert', async () => {
      await run.identifierInput().fill(run.email);
      await page.getByLabel('Password', { exact: true }).fill(WRONG_PASSWORD);
      await run.navigates(() => run.signInButton().click());
      run.assertPath('/ui/login');
      await run.assertHeading('Sign in');
      const alert = page.getByRole('alert');
      await alert.waitFor({ state: 'visible' });
      assert.equal(await alert.count(), 1, 'expected exactly one role="alert" region');
      const text = (await alert.innerText()).trim();
      assert.ok(text.includes(INVALID_CREDENTIALS), `the alert says "${text}"`);
      await page.getByText(INVALID_CREDENTIALS).first().waitFor({ state: 'visible' });
      assert.equal(await run.whoamiStatus(), 401, 'GET /sessions/whoami after a failed sign-in');
      await run.screenshot('sign-in-error');
    });

    await run.step('sign in with the right password lands on the welcome page', async () => {
      await run.identifierInput().fill(run.email);
      await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
      await run.navigates(() => run.signInButton().click());
      await run.assertSignedInAs(run.email);
      assert.equal(await run.whoamiStatus(), 200, 'GET /sessions/whoami after signing in');
      await run.screenshot('welcome-again');
    });

    if (mode.javaScriptEnabled) {
      await run.step('keyboard: Tab order on the sign-in page is identifier, password, submit', async () => {
        // A fresh, signed-out context so that /ui/welcome shows the sign-in page again.
        const ctx = await browser.newContext({ viewport: { width: 1024, height: 768 }, colorScheme: 'light' });
        try {
          const p = await ctx.newPage();
          await p.goto(`${PUBLIC}/ui/welcome`);
          assert.equal(new URL(p.url()).pathname, '/ui/login');
          // Start "from the top": clicking the (non-focusable) heading clears focus and moves the
          // sequential focus navigation starting point there, whatever has autofocus.
          await p.locator('h1').click();
          const describe = () =>
            p.evaluate(() => {
              const el = document.activeElement;
              if (!el || el === document.body) return { tag: 'body' };
              const style = getComputedStyle(el);
              return {
                tag: el.tagName.toLowerCase(),
                id: el.id,
                name: el.getAttribute('name'),
                type: el.getAttribute('type'),
                text: (el.textContent || '').trim().slice(0, 60),
                outline: `${style.outlineStyle} ${style.outlineWidth}`,
              };
            });
          assert.equal((await describe()).tag, 'body', 'something is still focused after clicking the heading');
          const order = [];
          for (let i = 0; i < 8; i++) {
            await p.keyboard.press('Tab');
            const el = await describe();
            order.push(el);
            if (el.tag === 'button') break;
          }
          run.log(`  tab order: ${order.map((e) => `${e.tag}${e.name ? `[name=${e.name}]` : ''}${e.type ? `[type=${e.type}]` : ''}`).join(' -> ')}`);
          const idx = (pred) => order.findIndex(pred);
          const identifier = idx((e) => e.name === 'identifier');
          const password = idx((e) => e.name === 'password');
          const submit = idx((e) => e.tag === 'button' && e.type === 'submit');
          assert.ok(identifier >= 0, 'Tab never reached the identifier input');
          assert.ok(password >= 0, 'Tab never reached the password input');
          assert.ok(submit >= 0, 'Tab never reached the submit button');
          assert.ok(identifier < password && password < submit, 'Tab order is not identifier, password, submit');
          assert.equal(identifier, 0, `the first Tab stop is ${JSON.stringify(order[0])}, not the identifier`);
          for (const e of [order[identifier], order[password], order[submit]]) {
            assert.ok(!e.outline.startsWith('none'), `no visible focus outline on ${e.tag}#${e.id} (${e.outline})`);
          }
          await run.screenshot('keyboard-focus-submit', p);
        } finally {
          await ctx.close();
        }
      });

      await run.step('mobile viewport (375x740): sign-in page fits the screen', async () => {
        const ctx = await browser.newContext({
          viewport: { width: 375, height: 740 },
          isMobile: true,
          hasTouch: true,
          colorScheme: 'light',
        });
        try {
          const p = await ctx.newPage();
          await p.goto(`${PUBLIC}/ui/welcome`);
          assert.equal(new URL(p.url()).pathname, '/ui/login');
          const { scrollWidth, innerWidth } = await p.evaluate(() => ({
            scrollWidth: document.documentElement.scrollWidth,
            innerWidth: window.innerWidth,
          }));
          assert.ok(scrollWidth <= innerWidth, `horizontal scrolling on a phone: scrollWidth ${scrollWidth} > ${innerWidth}`);
          const button = await p.getByRole('button', { name: /^Sign in\b/ }).boundingBox();
          assert.ok(button && button.x >= 0 && button.x + button.width <= 375, 'the sign-in button does not fit the screen');
          assert.ok(button.height >= 44, `the sign-in button is a small touch target (${button.height}px high)`);
          await run.screenshot('mobile-sign-in', p);
        } finally {
          await ctx.close();
        }
      });
    }

    await run.step('no console errors, page errors or failed sub-resources', async () => {
      assert.deepEqual(run.problems, [], 'problems seen while browsing');
    });
    return true;
  } catch (err) {
    console.error(`\nFAIL [${mode.key}] step "${run.currentStep}"`);
    console.error(`  at URL: ${page.url()}`);
    console.error(`  ${(err && err.message) || err}`.replace(/\n/g, '\n  '));
    if (run.problems.length) console.error(`  also seen: ${run.problems.join('; ')}`);
    try {
      const file = join(SHOTS, `${mode.key}-failure.png`);
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
const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  args: ['--no-sandbox'],
});
let passed = 0;
let failed = 0;
try {
  console.log(`ui: Chromium ${browser.version()}, testing ${PUBLIC}, screenshots in ${SHOTS}`);
  for (const mode of MODES) {
    if (await runMode(browser, mode)) passed += 1;
    else failed += 1;
  }
} finally {
  await browser.close();
}
console.log(`ui: ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
