// Trust cues in a real browser (Debian's Chromium, driven by playwright-core): the portal takes
// the organisation's brand from the settings (set with `sealpost settings set`, as a script
// would), the sign-in page shows logo, colour, support contact, imprint and privacy links and
// the "Why did I get this, and is it genuine?" block, on a desktop and a phone; the CLI refuses
// an accent colour white text cannot be read on; a recipient sets a personal security phrase
// in the profile (re-authenticating), and the next carrier to them shows it.
//
// Input from run.sh (environment): BASE_URL, OUTBOX, SMTP_PORT, SEALPOST_BIN, CONFIG, MAIL_PY,
// SHOTS. Prints PASS/FAIL lines and "N passed, M failed"; exits non-zero on any failure.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { env, mail, check, step, launch, finish } from './harness.mjs';

const base = env('BASE_URL');
const outbox = env('OUTBOX');
const shots = env('SHOTS');
const bin = env('SEALPOST_BIN');
const config = env('CONFIG');
mkdirSync(shots, { recursive: true });

const settings = (...args) => spawnSync(bin, ['settings', ...args, '--config', config], { encoding: 'utf8' });
const shot = async (page, name) => {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
};
const submit = async (page, selector) => {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
};

const org = 'Musterbank AG';
const accent = '#0b3d2e';
const contact = '+49 30 1234 5678';
const imprint = 'https://musterbank.example/impressum';
const privacy = 'https://musterbank.example/datenschutz';
const address = 'phrase-holder@example.com';
const password = 'green lanterns 58 by the harbour';
const phrase = 'Blue heron at dawn';

await step('branding through the settings CLI', async () => {
  const light = settings('set', 'branding.accent_color', '#ffd700');
  check(light.status === 2 && /contrast ratio of 1\.\d+:1/.test(light.stderr + light.stdout),
    `the CLI refuses a light accent colour with its contrast ratio (exit ${light.status})`);
  const svg = settings('set', 'branding.logo', 'data:image/svg+xml;base64,PHN2Zy8+');
  check(svg.status === 2, 'the CLI refuses an SVG logo');
  for (const [key, value] of [
    ['branding.org_name', org],
    ['branding.accent_color', accent],
    ['branding.support_contact', contact],
    ['branding.imprint_url', imprint],
    ['branding.privacy_url', privacy],
    ['branding.logo', mail('logo').data_url],
  ]) {
    const r = settings('set', key, value);
    if (r.status !== 0) throw new Error(`settings set ${key}: ${r.stderr.trim()}`);
  }
  check(true, 'org name, colour, support contact, links and logo set with `sealpost settings set`');
});

const browser = await launch();
try {
  const desktop = { ignoreHTTPSErrors: true, viewport: { width: 1100, height: 800 } };
  const phone = { ignoreHTTPSErrors: true, viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
  const context = await browser.newContext(desktop);
  const page = await context.newPage();

  await step('branded sign-in page', async () => {
    // Nodes pick up a settings change within seconds.
    let seen = false;
    for (let i = 0; i < 50 && !seen; i++) {
      await page.goto(`${base}/login`);
      seen = (await page.textContent('header.top')).includes(org);
      if (!seen) await page.waitForTimeout(200);
    }
    check(seen, 'the sign-in page shows the organisation name');
    const logo = await page.$eval('header img.logo', (img) => img.complete && img.naturalWidth);
    check(logo === 120, `the logo loads from /brand/logo (natural width ${logo})`);
    const bg = await page.$eval('header.top', (h) => getComputedStyle(h).backgroundColor);
    check(bg === 'rgb(11, 61, 46)', `the header has the accent colour (${bg})`);
    const footer = await page.textContent('footer');
    check(footer.includes(`encrypted by ${org}`) && !/end-to-end/i.test(footer),
      'the footer says "encrypted by" the organisation, not "end-to-end"');
    check(footer.includes(contact), 'the footer shows the support contact');
    check(await page.getAttribute('#imprint-link', 'href') === imprint, 'the imprint link is shown');
    check(await page.getAttribute('#privacy-link', 'href') === privacy, 'the privacy link is shown');
    const why = await page.textContent('#genuine');
    const host = new URL(base).hostname;
    check(why.includes('Why did I get this, and is it genuine?') && why.includes(host)
      && why.includes('never asks for your password by e-mail') && why.includes(contact),
      'the "is it genuine?" block names the host, the contact and that passwords are never asked by e-mail');
    const body = await page.textContent('body');
    check(!/end-to-end/i.test(body), 'no "end-to-end" anywhere on the page');
    await shot(page, 'branded-signin');

    const mobile = await browser.newContext(phone);
    const p = await mobile.newPage();
    await p.goto(`${base}/login`);
    const width = await p.evaluate(() => document.scrollingElement.scrollWidth);
    check(width <= 375, `the branded sign-in page fits a phone (scroll width ${width})`);
    await shot(p, 'branded-signin-phone');
    await mobile.close();
  });

  await step('security phrase', async () => {
    const sent = mail('send-to', env('SMTP_PORT'), outbox, address);
    if (!sent.password) throw new Error('no credentials mail for the new address');
    await page.goto(`${base}/login`);
    await page.fill('input[name=address]', address);
    await page.fill('input[name=password]', sent.password);
    await submit(page, 'main form button[type=submit]');
    check(/\/welcome/.test(page.url()), 'the first sign-in leads to the welcome page');
    check(await page.isVisible('input[name=phrase]'), 'the welcome page offers the security phrase (optional)');
    await page.fill('input[name=password]', password);
    await page.fill('input[name=password2]', password);
    await page.selectOption('select[name=question]', 'pet');
    await page.fill('input[name=answer]', 'Rex');
    await submit(page, 'main form button[type=submit]');
    check(!/\/welcome/.test(page.url()), 'the phrase can be skipped at the first sign-in');

    await page.goto(`${base}/profile`);
    await page.fill('#phrase input[name=phrase]', phrase);
    await page.fill('#phrase input[name=current]', 'not my password 1');
    await submit(page, '#phrase button[type=submit]');
    check((await page.textContent('.alert')).includes('current password is not correct'),
      'changing the phrase with a wrong password is refused');
    await page.fill('#phrase input[name=phrase]', phrase);
    await page.fill('#phrase input[name=current]', password);
    await submit(page, '#phrase button[type=submit]');
    check((await page.textContent('#current-phrase')) === phrase, 'the profile shows the phrase back');
    await page.locator('#phrase').scrollIntoViewIfNeeded();
    await page.locator('#phrase').screenshot({ path: join(shots, 'security-phrase.png') });

    mail('send-to', env('SMTP_PORT'), outbox, address);
    const carrier = mail('carriers', outbox, address, 2);
    check(carrier.text.includes(phrase), 'the next carrier shows the phrase in its text part');
    const first = mail('carriers', outbox, address, 1);
    check(!first.text.includes(phrase), 'the carrier sent before the phrase was set does not show it');
  });
  await context.close();
} catch (e) {
  check(false, `browser: ${e.message.split('\n')[0]}`);
} finally {
  await browser.close();
}
finish();
