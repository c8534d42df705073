// A recipient's second factor in a real browser (Debian's Chromium, driven by playwright-core):
// a new recipient at code.example gets in by a mailbox code and chooses a password, then sets
// up an authenticator app in the profile (the QR code is server-drawn inline SVG; the code is
// computed here from the shown key, RFC 6238 with node's crypto), keeps the ten recovery
// codes, signs out, and signs in again with the password and a code.
//
// Input from run.sh (environment): BASE_URL, OUTBOX, WORK, SMTP_PORT, MAIL_PY, SHOTS.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { totp as totpAt } from './totp.mjs';
import { env, mail, check, submit, launch, finish } from './harness.mjs';

const base = env('BASE_URL');
const work = env('WORK');
const outbox = env('OUTBOX');
const shots = env('SHOTS');
const smtpPort = env('SMTP_PORT');
mkdirSync(shots, { recursive: true });


/// RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of `secret` at Unix time `t` (seconds).
const totp = (secret, t) => totpAt(secret, t * 1000);
const now = () => Math.floor(Date.now() / 1000);

// RFC 6238 appendix B test vector (SHA-1, 8 digits there; the last 6 digits here).
check(totp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 59) === '287082', 'the test computes RFC 6238 codes');

const browser = await launch();
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const address = `totp-${Date.now()}@code.example`;
  const password = 'violet kite 31 above meadows';

  // First contact by mailbox code, then a password of the recipient's own.
  const sent = mail('send-to', smtpPort, outbox, work, address);
  await page.goto(`${base}/login`);
  await page.fill('input[name=address]', address);
  await submit(page, 'button[formaction="/login/code"]');
  const { code } = mail('code', outbox, address);
  await page.fill('input[name=code]', code);
  await submit(page);
  await page.fill('input[name=password]', password);
  await page.fill('input[name=password2]', password);
  await page.selectOption('select[name=question]', 'pet');
  await page.fill('input[name=answer]', 'Rex');
  await submit(page);
  check(!page.url().includes('/login'), `signed in with a mailbox code and a new password (${sent.secure ? 'carrier arrived' : ''})`);

  // The profile offers the authenticator; enrolling asks for the current password.
  await page.goto(`${base}/profile`);
  check(await page.isVisible('#totp-enrol'), 'the profile offers an authenticator app');
  await page.fill('#totp-current', password);
  await submit(page, '#totp-enrol');
  const svg = await page.$('.qr-box svg');
  check(svg !== null, 'the enrolment page shows the QR code as inline SVG');
  const box = svg ? await svg.boundingBox() : null;
  check(box !== null && box.width >= 150, `the QR code is drawn at a scannable size (${box ? box.width : 0}px)`);
  const secret = (await page.textContent('#totp-secret')).trim();
  check(/^[A-Z2-7]{32}$/.test(secret), 'the key is shown as text too');
  await page.screenshot({ path: join(shots, 'recipient-totp.png') });
  const confirm = totp(secret, now());
  await page.fill('#totp-code', confirm);
  await submit(page);
  const codes = await page.$$eval('#recovery-codes code', (els) => els.map((e) => e.textContent));
  check(codes.length === 10 && codes.every((c) => /^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/.test(c)),
    `ten recovery codes are shown once (${codes.length})`);
  await submit(page, '#codes-continue').catch(async () => page.goto(`${base}/profile`));
  await page.goto(`${base}/profile`);
  check((await page.textContent('#totp-status')).includes('has been set up'), 'the profile shows the authenticator');
  check((await page.textContent('#recovery-left')).includes('10'), 'ten unused recovery codes');

  // Sign out, then sign in with the password and a code of the next step (the confirming
  // code's step is used up).
  await submit(page, 'form[action="/logout"] button');
  await page.goto(`${base}/login`);
  await page.fill('input[name=address]', address);
  await page.fill('input[name=password]', password);
  await submit(page, 'main form button[type=submit]:not([formaction])');
  check(page.url() === `${base}/login/second`, `the password leads to the code step (${page.url()})`);
  await page.fill('#second-code', confirm);
  await submit(page);
  check(page.url() === `${base}/login/second`, 'the confirming code is refused a second time');
  await page.fill('#second-code', totp(secret, now() + 30));
  await submit(page);
  check(page.url() === `${base}/`, `password + code signed in (${page.url()})`);
  await page.goto(`${base}/profile`);
  check(page.url() === `${base}/profile`, 'the profile opens after the second step');
} catch (e) {
  check(false, `recipient TOTP: ${e.message.split('\n')[0]}`);
} finally {
  await browser.close();
}
finish();
