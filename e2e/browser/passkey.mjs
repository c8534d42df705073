// Passkeys (WebAuthn) in a real browser (Debian's Chromium, driven by playwright-core) with a
// virtual authenticator (CDP WebAuthn domain: CTAP2, internal transport, resident keys, user
// verification that succeeds). A recipient at pk.example (first contact by mailbox code) signs
// in with a code, chooses a password, registers a passkey in the profile, signs out, opens a
// second secure.htm and signs in with the passkey alone, then reads the message.
//
// WebAuthn needs a secure context whose host is a valid RP ID; 127.0.0.1 is not one. So
// run.sh starts a node of its own with public_url https://gw.test:PORT, and Chromium maps
// gw.test to 127.0.0.1 (--host-resolver-rules) and trusts the node's self-signed certificate
// by its public-key hash (--ignore-certificate-errors-spki-list; Chromium refuses WebAuthn on
// a page with a certificate error, so plain "ignore HTTPS errors" would not do).
//
// Input from run.sh (environment): BASE_URL (https://gw.test:PORT), OUTBOX, WORK, SMTP_PORT,
// MAIL_PY, SHOTS, SPKI (base64 SHA-256 of the certificate's public key).
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
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
};
const tokenUrl = new RegExp(`^${base.replace(/[.]/g, '\\.')}/open/[A-Za-z0-9_-]{43}$`);
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
const messageText = async (page) => {
  let text = await page.textContent('main');
  const iframe = await page.$('iframe.body');
  if (iframe) {
    const frame = await iframe.contentFrame();
    await frame.waitForLoadState('load');
    text += await frame.evaluate(() => document.body.innerText);
  }
  return text;
};

const browser = await launch([
  '--host-resolver-rules=MAP gw.test 127.0.0.1',
  `--ignore-certificate-errors-spki-list=${env('SPKI')}`,
]);
try {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1024, height: 800 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  const address = 'holder@pk.example';
  const password = 'amber kite 19 across dunes';

  const ok = await step('first contact and password', async () => {
    const sent = mail('send-to', smtpPort, outbox, work, address);
    await openSecureHtm(page, sent.secure);
    check(page.url().startsWith(`${base}/login?next=/open/`), `secure.htm reached ${base}/login`);
    check(await page.isVisible('#passkey-login-button'),
      'the sign-in page shows "Sign in with a passkey" (the browser has PublicKeyCredential)');
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
    check(tokenUrl.test(page.url()), `signed in by code, the first message opens (${page.url()})`);
  });

  const registered = ok && await step('register a passkey', async () => {
    await page.goto(`${base}/profile`);
    check(await page.isVisible('#passkey-add'), 'the profile offers "Add a passkey"');
    check((await page.textContent('#passkeys')).includes('You have no passkey yet'),
      'the profile lists no passkey yet');
    // A wrong current password is refused before the authenticator is asked.
    await page.fill('#passkey-add input[name=name]', 'Work laptop');
    await page.fill('#passkey-add input[name=current]', 'not my password');
    await page.click('#passkey-add button[type=submit]');
    await page.waitForSelector('#passkey-add-error:not([hidden])');
    const refusedText = await page.textContent('#passkey-add-error');
    check(refusedText.includes('current password is not correct'),
      `a wrong current password is refused (${refusedText})`);
    const { credentials: none } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    check(none.length === 0, 'no credential was created for the refused attempt');
    await page.fill('#passkey-add input[name=current]', password);
    await Promise.all([
      page.waitForURL(/\/profile\?saved=passkey/),
      page.click('#passkey-add button[type=submit]'),
    ]);
    check((await page.textContent('main')).includes('Your passkey was added'), 'the profile says the passkey was added');
    check((await page.textContent('#passkeys .passkey-name')) === 'Work laptop', 'the passkey is listed by its name');
    check((await page.textContent('#passkeys')).includes('last used: never'), 'with its dates (never used yet)');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    check(credentials.length === 1 && credentials[0].isResidentCredential,
      'the authenticator holds one discoverable (resident) credential');
    await page.locator('#passkeys').screenshot({ path: join(shots, 'passkey-profile.png') });
  });

  await (registered && step('sign in with the passkey alone', async () => {
    await submit(page, 'header form.nav button[type=submit]');
    check(/\/login\?bye=1$/.test(page.url()), 'signed out');
    const sent = mail('send-to', smtpPort, outbox, work, address);
    await openSecureHtm(page, sent.secure);
    // No address, no password: the browser offers the discoverable passkey.
    await page.click('#passkey-login-button');
    await Promise.race([
      page.waitForURL(tokenUrl, { timeout: 15000 }),
      page.waitForSelector('#passkey-login-error:not([hidden])', { timeout: 15000 })
        .then(async () => { throw new Error(await page.textContent('#passkey-login-error')); }),
    ]);
    check(tokenUrl.test(page.url()), `the passkey signed in and the new message opens (${page.url()})`);
    check((await messageText(page)).includes(sent.text), 'the message text is shown');
    await page.goto(`${base}/profile`);
    check(!(await page.textContent('#passkeys')).includes('last used: never'), 'the profile shows when the passkey was last used');
    check((await page.textContent('#last-login')).length > 0, 'the sign-in is the last login');
  }));
} finally {
  await browser.close();
}
finish();
