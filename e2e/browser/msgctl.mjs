// Browser checks of message control (issue 16), on the node run.sh started: a message
// revoked with `sealpost message revoke` and one sent with an expiry date in the past. For
// each, the recipient opens secure.htm from disk, signs in, and gets the revoked / expired
// page in English and in German; on a phone the page has no horizontal scrolling.
// Then the sender's side: the status link of a credentials mail, followed on a phone, shows
// the copy's status; its Revoke button revokes it, and the recipient's secure.htm then names
// the sender as the revoker.
// Screenshots: message-revoked.png, message-expired.png, sender-status.png in SHOTS.
// Input (environment, from run.sh): BASE_URL, OUTBOX, WORK, SHOTS, SMTP_PORT, BIN, CONFIG.
// Prints PASS/FAIL lines and "N passed, M failed"; exits non-zero on any failure.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, check, step, submit, launch, finish } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const base = env('BASE_URL');
const work = env('WORK');
const outbox = env('OUTBOX');
const shots = env('SHOTS');
mkdirSync(shots, { recursive: true });

const send = (address, expires) => JSON.parse(execFileSync('python3',
  [join(here, 'msgctl_mail.py'), 'send', env('SMTP_PORT'), outbox, work, address,
    ...(expires ? [expires] : [])], { encoding: 'utf8' }));
const sealpost = (...args) => execFileSync(env('BIN'), [...args, '--config', env('CONFIG')],
  { encoding: 'utf8' });

const browser = await launch();

/// Opens `secure` from disk in a fresh context; signs in (the first time through the welcome
/// page with `chosen`); returns the page on whatever the portal showed for the message.
const openAs = async (options, address, password, secure, firstTime) => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, ...options });
  const page = await context.newPage();
  await page.goto('file://' + secure);
  // secure.htm has no script by default: its one button posts it.
  await Promise.all([
    page.waitForURL(/\/login\?next=\/open\//, { timeout: 15000 }),
    page.click('#sealpost-form button[type=submit]'),
  ]);
  await page.fill('input[name=address]', address);
  await page.fill('input[name=password]', password);
  await submit(page);
  if (firstTime) {
    await page.fill('input[name=password]', firstTime);
    await page.fill('input[name=password2]', firstTime);
    await page.selectOption('select[name=question]', 'pet');
    await page.fill('input[name=answer]', 'Rex');
    await submit(page);
  }
  return { context, page };
};
const mainText = (page) => page.textContent('main');
const scrollWidth = (page) => page.evaluate(() => document.scrollingElement.scrollWidth);

const cases = [
  {
    name: 'revoked',
    address: 'revoked@example.com',
    prepare: (m) => sealpost('message', 'revoke', m.envelope_id, '--by', 'Anna Advisor',
      '--reason', 'wrong customer'),
    en: ['This message was revoked by Anna Advisor on', 'can no longer be opened'],
    de: ['zurückgezogen', 'von Anna Advisor'],
    hidden: 'wrong customer',
  },
  {
    name: 'expired',
    address: 'expired@example.com',
    expires: '2001-01-01T00:00:00Z',
    prepare: () => {},
    en: ['This message has expired', 'advisor@bank.example'],
    de: ['Diese Nachricht ist abgelaufen', 'advisor@bank.example'],
  },
];

try {
  for (const c of cases) {
    await step(`${c.name} message`, async () => {
      const m = send(c.address, c.expires);
      c.prepare(m);
      const chosen = 'Quiet-Meadow-2026';
      const en = await openAs({ locale: 'en-US', viewport: { width: 1024, height: 720 } },
        c.address, m.password, m.secure, chosen);
      const text = await mainText(en.page);
      for (const want of c.en) check(text.includes(want), `${c.name} (en): the page says "${want}"`);
      if (c.hidden) check(!text.includes(c.hidden), `${c.name} (en): a private reason is not shown`);
      await en.page.evaluate(() => window.scrollTo(0, 0));
      await en.page.screenshot({ path: join(shots, `message-${c.name}.png`) });
      await en.context.close();

      const de = await openAs({ locale: 'de-DE', extraHTTPHeaders: { 'Accept-Language': 'de' },
        viewport: { width: 1024, height: 720 } }, c.address, chosen, m.secure, null);
      const deText = await mainText(de.page);
      for (const want of c.de) check(deText.includes(want), `${c.name} (de): the page says "${want}"`);
      await de.context.close();

      const phone = await openAs({ locale: 'en-US', viewport: { width: 360, height: 740 },
        isMobile: true, hasTouch: true }, c.address, chosen, m.secure, null);
      const width = await scrollWidth(phone.page);
      check(width <= 360, `${c.name} (phone): no horizontal scrolling (${width}px)`);
      check((await mainText(phone.page)).includes(c.en[0]), `${c.name} (phone): the page says why`);
      await phone.context.close();
    });
  }
  await step('the sender revokes from the status link', async () => {
    const address = 'wrong-customer@example.com';
    const m = send(address);
    const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'en-US',
      viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    await page.goto(m.status_link);
    check((await mainText(page)).includes('works once'), 'sender: the link opens a page with one button');
    await submit(page, '#show-status');
    check(page.url().endsWith('/s/status'), `sender: the button leads to the status page (${page.url()})`);
    const text = await mainText(page);
    check(text.includes(address) && text.includes('Not opened yet'), 'sender: the status names the recipient and says unread');
    const width = await scrollWidth(page);
    check(width <= 360, `sender (phone): no horizontal scrolling (${width}px)`);
    await page.screenshot({ path: join(shots, 'sender-status.png'), fullPage: true });
    await submit(page, '#revoke');
    check((await mainText(page)).includes('can no longer open this message'), 'sender: revoked, and the page says so');
    await context.close();
    // The same link is used up.
    const again = await browser.newContext({ ignoreHTTPSErrors: true });
    const p2 = await again.newPage();
    await p2.goto(m.status_link);
    await submit(p2, '#show-status');
    check((await mainText(p2)).includes('already been used'), 'sender: the link works once');
    await again.close();
    const reader = await openAs({ locale: 'en-US', viewport: { width: 1024, height: 720 } },
      address, m.password, m.secure, 'Quiet-Meadow-2026');
    check((await mainText(reader.page)).includes('revoked by advisor@bank.example'),
      'recipient: the revoked page names the sender');
    await reader.context.close();
  });
} finally {
  await browser.close();
}
finish();
