// The opt-in `link` delivery profile in a real browser (Debian's Chromium, playwright-core):
// run.sh has put link.example on `delivery.profile = link`; a flagged mail goes to a new
// recipient there, the carrier's /m/{id} link is read from the delivered mail and clicked
// (opened as a top-level navigation, as from a webmail), the recipient signs in for the first
// time with the password mailed to the sender, comes back to the link and reads the message;
// then the same on a phone (390x844), and an unknown link shows the expired page.
//
// Input from run.sh (environment): BASE_URL, OUTBOX, SMTP_PORT, MAIL_PY, SHOTS.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { env, mail, check, step, submit, launch, finish } from './harness.mjs';

const base = env('BASE_URL');
const outbox = env('OUTBOX');
const shots = env('SHOTS');
const address = 'reader@link.example';
mkdirSync(shots, { recursive: true });

const shot = async (page, name) => {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(shots, `${name}.png`) });
};
const tokenUrl = /\/open\/[A-Za-z0-9_-]{43}$/;
const login = async (page, password) => {
  await page.fill('input[name=address]', address);
  await page.fill('input[name=password]', password);
  await submit(page);
};
/// The text of the message page, including its sandboxed HTML frame when there is one.
const messageText = async (page) => {
  let text = await page.textContent('main');
  const frame = await page.$('iframe.body');
  if (frame) {
    const content = await frame.contentFrame();
    await content.waitForLoadState('load');
    text += await content.evaluate(() => document.body.innerText);
  }
  return text;
};

const browser = await launch();
let sent = null;
let chosen = 'Quiet-Lighthouse-2026';
try {
  await step('carrier with a link', async () => {
    sent = mail('send-link', env('SMTP_PORT'), outbox, address);
    const pattern = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/m/[A-Za-z0-9_-]{43}$`);
    check(pattern.test(sent.link), `the carrier's text names this message's link under the portal (${sent.link})`);
    check(sent.attachments.length === 1 && sent.attachments[0] === 'secure.htm',
      `secure.htm stays attached as the fallback (${sent.attachments.join(', ') || 'none'})`);
  });

  if (sent) {
    await step('desktop: link, first sign-in, message', async () => {
      const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'en-US', viewport: { width: 1024, height: 720 } });
      const page = await context.newPage();
      await page.goto(sent.link);
      const path = new URL(sent.link).pathname;
      check(page.url().includes(`/login?next=${path}`), 'the link asks a stranger to sign in and names the way back');
      await login(page, sent.password);
      check(page.url().includes(`/welcome?next=${path}`), 'the generated password leads to the welcome page, then back to the link');
      await page.fill('input[name=password]', chosen);
      await page.fill('input[name=password2]', chosen);
      await page.selectOption('select[name=question]', 'pet');
      await page.fill('input[name=answer]', 'Rex');
      await submit(page);
      check(tokenUrl.test(page.url()), `after signing in the link opens the message (${page.url()})`);
      const text = await messageText(page);
      check(text.includes(sent.text), 'the message behind the link is shown');
      await shot(page, 'link-open');
      await context.close();
    });

    await step('phone: link and message', async () => {
      const phone = await browser.newContext({
        ignoreHTTPSErrors: true, locale: 'en-US', viewport: { width: 390, height: 844 },
        isMobile: true, hasTouch: true, deviceScaleFactor: 1,
      });
      const p = await phone.newPage();
      await p.goto(sent.link);
      const loginWidth = await p.evaluate(() => document.scrollingElement.scrollWidth);
      check(loginWidth <= 390, `phone: the sign-in page fits 390 px (scrollWidth ${loginWidth})`);
      await login(p, chosen);
      check(tokenUrl.test(p.url()), 'phone: after signing in the link opens the message');
      const text = await messageText(p);
      check(text.includes(sent.text), 'phone: the message behind the link is shown');
      const width = await p.evaluate(() => document.scrollingElement.scrollWidth);
      check(width <= 390, `phone: the message page fits 390 px (scrollWidth ${width})`);
      await shot(p, 'link-open-phone');

      const unknown = `${base}/m/${'A'.repeat(43)}`;
      const response = await p.goto(unknown);
      check(response.status() === 410, `an unknown link answers 410 (${response.status()})`);
      check((await p.textContent('main')).includes('This link has expired'),
        'an unknown link shows the expired page');
      await phone.close();
    });
  }
} catch (e) {
  check(false, `browser: ${e.message.split('\n')[0]}`);
} finally {
  await browser.close();
}
finish();
