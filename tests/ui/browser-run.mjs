// What every real-browser test here shares: one run of a test in one browser context (a mode), collecting browser
// problems (console and page errors, failed requests, broken sub-resources), logging named steps and saving
// numbered screenshots. ui.test.mjs and proxy.test.mjs extend it with their own assertions.

import assert from 'node:assert/strict';
import { join } from 'node:path';

export class BrowserRun {
  /**
   * @param mode      `{key, title, javaScriptEnabled}`
   * @param prefix    prefix of log lines, screenshots and generated e-mail addresses (`ui`, `proxy`)
   * @param shots     the screenshot directory
   */
  constructor(mode, context, page, { prefix, shots }) {
    this.mode = mode;
    this.context = context;
    this.page = page;
    this.prefix = prefix;
    this.shots = shots;
    this.shot = 0;
    this.currentStep = '(setup)';
    this.problems = []; // console errors, page errors, failed sub-resources
    this.email = `${prefix}-${mode.key}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const source = msg.location()?.url || '';
      // The browser's own favicon probe: no page here declares an icon, and /favicon.ico is not served.
      if (/\/favicon\.ico(\?|$)/.test(source)) return;
      this.problems.push(`console error on ${page.url()}: ${msg.text()}${source ? ` (${source})` : ''}`);
    });
    page.on('pageerror', (err) => this.problems.push(`page error on ${page.url()}: ${err.message}`));
    page.on('requestfailed', (req) =>
      this.problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`),
    );
    page.on('response', (res) => {
      const type = res.request().resourceType();
      if (res.status() >= 400 && ['stylesheet', 'image', 'script', 'font'].includes(type)) {
        this.problems.push(`${type} ${res.url()} answered ${res.status()}`);
      }
    });
  }

  log(msg) {
    console.log(`[${this.prefix === 'ui' ? '' : `${this.prefix} `}${this.mode.key}] ${msg}`);
  }

  async step(name, fn) {
    this.currentStep = name;
    this.log(name);
    await fn();
  }

  async screenshot(name, page = this.page) {
    this.shot += 1;
    const stem = this.prefix === 'ui' ? this.mode.key : `${this.prefix}-${this.mode.key}`;
    const file = join(this.shots, `${stem}-${String(this.shot).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    this.log(`  screenshot ${file}`);
  }

  async assertHeading(text) {
    const h1 = this.page.locator('h1');
    await h1.first().waitFor({ state: 'visible' });
    assert.equal(await h1.count(), 1, 'expected exactly one <h1>');
    assert.equal((await h1.innerText()).trim(), text, `unexpected <h1> on ${this.page.url()}`);
  }
}
