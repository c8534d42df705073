// First contact by mailbox code, in a real browser (Debian's Chromium, driven by
// playwright-core): with `recipients.first_contact@code.example = mailbox-code` (set by run.sh),
// a mail to a new recipient at code.example generates no password and no credentials mail.
// The recipient opens secure.htm from disk, asks for a code on the sign-in page ("E-mail me a
// code"), reads it from the mail (the maildir next hop, through mail.py), enters it, chooses a
// password and reads the message: on a desktop and on the phone layout (390x844).
//
// Input from run.sh (environment): BASE_URL, OUTBOX, WORK, SMTP_PORT, MAIL_PY, SHOTS.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { env, mail, check, step, submit, launch, finish } from './harness.mjs';

const base = env('BASE_URL');
const work = env('WORK');
const outbox = env('OUTBOX');
const shots = env('SHOTS');
const smtpPort = env('SMTP_PORT');
mkdirSync(shots, { recursive: true });

const shot = async (page, name) => {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(shots, `${name}.png`) });
};
const tokenUrl = /\/open\/[A-Za-z0-9_-]{43}$/;

/// Opens secure.htm from disk and gets to the portal's sign-in page. secure.htm may submit
/// itself or wait for a click on its button: clicking works both ways (a click after the page
/// has already left does nothing).
const openSecureHtm = async (page, path) => {
  await page.goto('file://' + path);
  const arrived = page.waitForURL(/\/login\?next=\/open\//, { timeout: 15000 });
  try {
    const button = await page.$('form button[type=submit], form input[type=submit]');
    if (button) await button.click({ timeout: 3000 });
  } catch {
    // The page navigated on its own first.
  }
  await arrived;
};

/// The whole first contact for `address` in `context`; `label` names the layout.
const firstContact = async (context, address, label, shotNames) => {
  const sent = mail('send-to', smtpPort, outbox, work, address);
  check(sent.credentials_mails === 0, `${label}: no credentials mail was generated for ${address}`);
  const page = await context.newPage();
  await openSecureHtm(page, sent.secure);
  check(true, `${label}: secure.htm (file://) reached the sign-in page`);
  const codeButton = 'button[formaction="/login/code"]';
  check(await page.isVisible(codeButton), `${label}: the sign-in page offers "E-mail me a code"`);
  await page.fill('input[name=address]', address);
  if (shotNames.login) await shot(page, shotNames.login);
  await submit(page, codeButton);
  check(page.url() === `${base}/login/code`, `${label}: the code step is shown (${page.url()})`);
  check((await page.textContent('main')).includes('6-digit code'),
    `${label}: the page says a 6-digit code was sent`);
  const { code } = mail('code', outbox, address);
  check(/^[0-9]{6}$/.test(code), `${label}: a 6-digit code arrived in the recipient's own mailbox`);
  await page.fill('input[name=code]', code);
  if (shotNames.code) await shot(page, shotNames.code);
  await submit(page);
  check(/\/welcome\?next=\/open\//.test(page.url()), `${label}: the code signed in and asks for a password first`);
  check((await page.textContent('main')).includes('You signed in with a code'),
    `${label}: the welcome page says the code signed in`);
  const password = 'green ferry 82 under bridges';
  await page.fill('input[name=password]', password);
  await page.fill('input[name=password2]', password);
  await page.selectOption('select[name=question]', 'pet');
  await page.fill('input[name=answer]', 'Rex');
  await submit(page);
  check(tokenUrl.test(page.url()), `${label}: after choosing a password the message opens (${page.url()})`);
  // A plain-text body is shown in the page, an HTML one in the sandboxed frame.
  let text = await page.textContent('main');
  const iframe = await page.$('iframe.body');
  if (iframe) {
    const frame = await iframe.contentFrame();
    await frame.waitForLoadState('load');
    text += await frame.evaluate(() => document.body.innerText);
  }
  check(text.includes(sent.text), `${label}: the message text is shown`);
  const width = await page.evaluate(() => document.scrollingElement.scrollWidth);
  const viewport = page.viewportSize().width;
  check(width <= viewport, `${label}: no horizontal scrolling (${width} <= ${viewport})`);
  await page.close();
  return password;
};

const browser = await launch();
try {
  await step('mailbox-code first contact (desktop)', async () => {
    const context = await browser.newContext({
      ignoreHTTPSErrors: true, locale: 'en-US', viewport: { width: 1024, height: 720 },
    });
    await firstContact(context, 'first@code.example', 'desktop', { login: 'code-sign-in' });
    await context.close();
  });
  await step('mailbox-code first contact (phone)', async () => {
    const context = await browser.newContext({
      ignoreHTTPSErrors: true, locale: 'en-US', viewport: { width: 390, height: 844 },
      isMobile: true, hasTouch: true,
    });
    await firstContact(context, 'phone@code.example', 'phone', { code: 'mailbox-code' });
    await context.close();
  });
} finally {
  await browser.close();
}
finish();
