// The `datafile` delivery profile in a real browser, on a phone (390x844): the recipient's
// domain (datafile.example) has `delivery.profile@datafile.example = datafile`, so the carrier
// brings message.sealpost (application/octet-stream) and no secure.htm. The recipient follows
// the carrier's upload link, signs in (first sign-in: own password and secret question),
// uploads message.sealpost on the start page and reads the message.
//
// Input from run.sh (environment): BASE_URL, WORK (datafile.sealpost, datafile-password),
// DATAFILE_SENT (JSON from `mail.py datafile`), SHOTS.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { env, check, step, submit, launch, finish } from './harness.mjs';

const base = env('BASE_URL');
const work = env('WORK');
const shots = env('SHOTS');
const sent = JSON.parse(env('DATAFILE_SENT'));
mkdirSync(shots, { recursive: true });

const width = (page) => page.evaluate(() => document.scrollingElement.scrollWidth);
const tokenUrl = /\/open\/[A-Za-z0-9_-]{43}$/;
const uploadUrl = `${base}/`;

// The carrier as it arrived (read by mail.py from the maildir next hop).
check(sent.defects.length === 0,
  `the data-file carrier parses under email.policy.strict (${sent.defects.join('; ') || 'no defects'})`);
check(sent.attachments.length === 1 && sent.attachments[0].filename === 'message.sealpost'
    && sent.attachments[0].type === 'application/octet-stream',
  `the carrier has exactly one attachment, message.sealpost, application/octet-stream (${JSON.stringify(sent.attachments)})`);
check(sent.text.includes(`Open the upload page: ${uploadUrl}`),
  "the carrier's text/plain part links the portal's upload page");
check(/^[0-9a-f]{32}$/.test(sent.ledger_id) && sent.text.includes(`Message ID: ${sent.ledger_id}`),
  `the carrier names its ledger id in a header and the small print (${sent.ledger_id})`);

const browser = await launch();
try {
  await step('data file on a phone', async () => {
    const phone = await browser.newContext({
      ignoreHTTPSErrors: true, locale: 'en-US', viewport: { width: 390, height: 844 },
      isMobile: true, hasTouch: true, deviceScaleFactor: 1,
    });
    const p = await phone.newPage();
    // The carrier's link: the portal asks for a sign-in first.
    await p.goto(uploadUrl);
    check(new URL(p.url()).pathname === '/login', `the upload link asks for a sign-in (${p.url()})`);
    await p.fill('input[name=address]', sent.address);
    await p.fill('input[name=password]', readFileSync(join(work, 'datafile-password'), 'utf8').trim());
    await submit(p);
    check(/\/welcome/.test(p.url()), 'the generated password leads to the welcome page');
    const chosen = 'Quiet-Meadow-2026';
    await p.fill('input[name=password]', chosen);
    await p.fill('input[name=password2]', chosen);
    await p.selectOption('select[name=question]', 'pet');
    await p.fill('input[name=answer]', 'Rex');
    await submit(p);
    check(new URL(p.url()).pathname === '/', 'after the welcome page the recipient is on the upload page');
    const intro = await p.textContent('main');
    check(intro.includes('message.sealpost'), 'the upload page names message.sealpost');
    const accept = await p.getAttribute('input[name=file]', 'accept');
    check((accept || '').includes('.sealpost'), `the file field accepts .sealpost files (${accept})`);
    await p.setInputFiles('input[name=file]', join(work, 'datafile.sealpost'));
    const uploadWidth = await width(p);
    check(uploadWidth <= 390, `phone: the upload page fits 390 px (scrollWidth ${uploadWidth})`);
    await p.evaluate(() => window.scrollTo(0, 0));
    await p.screenshot({ path: join(shots, 'datafile-upload.png') });
    await submit(p);
    check(tokenUrl.test(p.url()), `the uploaded message.sealpost opens the message (${p.url()})`);
    // A text/plain original is shown as preformatted text.
    const text = await p.textContent('pre.body');
    check(text.includes(sent.body), 'the message body is shown');
    const messageWidth = await width(p);
    check(messageWidth <= 390, `phone: the message page fits 390 px (scrollWidth ${messageWidth})`);
    await phone.close();
  });
} catch (e) {
  check(false, `browser: ${e.message.split('\n')[0]}`);
} finally {
  await browser.close();
}
finish();
