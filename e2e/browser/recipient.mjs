// The recipient's real path in a real browser: open a delivered secure.htm from disk
// (file://), let it submit itself to the portal, sign in, read the message.
// Usage: node recipient.mjs SECURE_HTM ADDRESS PASSWORD EXPECTED_TEXT SCREENSHOT_DIR
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

const [securePath, address, password, expected, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
let failed = 0;
let passed = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${what}`);
  ok ? passed++ : failed++;
};

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  await page.goto('file://' + resolve(securePath));
  // The page submits itself; we land on the portal's login page.
  await page.waitForURL(/\/login\?next=%2Fopen%2F|\/login\?next=\/open\//, { timeout: 15000 });
  check(true, 'secure.htm submitted itself and the portal asked for a login');
  await page.screenshot({ path: `${shots}/login.png` });
  await page.fill('input[name=address]', address);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await page.waitForLoadState('load');
  const url = page.url();
  check(/\/open\//.test(url), `after login the browser is on the message (${url})`);
  const content = await page.content();
  let bodyText = content;
  const frame = page.frames().find((f) => f.url().endsWith('/html'));
  if (frame) bodyText += await frame.content();
  check(bodyText.includes(expected), 'the decrypted message text is shown');
  await page.screenshot({ path: `${shots}/message.png`, fullPage: true });
} catch (e) {
  check(false, `browser flow: ${e.message}`);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
