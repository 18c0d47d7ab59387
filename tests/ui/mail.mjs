// Reading the mails that the SMTP sink (tests/support/smtp_sink.py) wrote: one JSON file per mail in its directory,
// named <seq>.json (zero-padded, so the names sort in arrival order), with `seq`, `from`, `to`, `subject`, `text`
// and `html` (already decoded by the sink) and `raw`.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const CODE_LINE = /^\s*(\d{6})\s*$/m;
const CODE_ANY = /(?<!\d)\d{6}(?!\d)/;

/** Every mail in `dir`, oldest first. */
export function readMails(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^\d+\.json$/.test(f))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
}

/** The sequence number of the newest mail so far (0 for none): pass it as `after` to ignore older mails. */
export function mailMark(dir) {
  const all = readMails(dir);
  return all.length ? all[all.length - 1].seq : 0;
}

/**
 * The newest mail to `recipient` (case-insensitive) with a sequence number above `after`, polling every 100 ms
 * until `timeout` ms have passed; throws naming what did arrive.
 */
export async function waitForMail(dir, recipient, { after = 0, timeout = 15_000 } = {}) {
  const want = recipient.toLowerCase();
  const deadline = Date.now() + timeout;
  for (;;) {
    const all = readMails(dir).filter((m) => m.seq > after);
    const hits = all.filter((m) => (m.to || []).some((t) => t.toLowerCase() === want));
    if (hits.length) return hits[hits.length - 1];
    if (Date.now() >= deadline) {
      const seen = all.map((m) => `#${m.seq} to ${m.to} "${m.subject}"`).join('; ') || 'none';
      throw new Error(`no mail to ${recipient} in ${dir} within ${timeout} ms (after #${after}); arrived: ${seen}`);
    }
    await sleep(100);
  }
}

/** The one-time code of a mail: a line of exactly six digits, else the first run of six digits. */
export function mailCode(mail) {
  for (const body of [mail.text || '', mail.html || '']) {
    const m = CODE_LINE.exec(body);
    if (m) return m[1];
  }
  for (const body of [mail.text || '', mail.html || '']) {
    const m = CODE_ANY.exec(body);
    if (m) return m[0];
  }
  return null;
}
