// The recipient's real path in a real browser (Debian's Chromium, driven by playwright-core):
// open the delivered secure.htm from disk (file://), press its button, sign in, replace the
// generated password and set a secret question, read the HTML body with its inline image,
// download the attachment, reply securely with an attachment, sign out, recover the password
// with the mailed one-time code and the secret question, have an administrator (who enrols a
// TOTP second factor at first sign-in) reset it and set a new one through the mailed one-time
// link, and check the phone layout and the upload fallback. Before that, the carrier mail is checked as a strict mail client sees it;
// at the end, secure.htm is checked to request nothing but the POST to /open (with and without
// JavaScript). Mails are read from the maildir next hop through mail.py.
//
// Input from run.sh (environment): BASE_URL, OUTBOX, WORK (secure.htm, password,
// attachment.pdf), SENT (JSON from `mail.py send`), ADMIN_NAME, ADMIN_PASSWORD, MAIL_PY, SHOTS.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { totp } from './totp.mjs';
import { env, mail, check, step, submit, launch, finish } from './harness.mjs';

const base = env('BASE_URL');
const work = env('WORK');
const outbox = env('OUTBOX');
const shots = env('SHOTS');
const sent = JSON.parse(env('SENT'));
const address = 'customer@example.com';
const securePath = join(work, 'secure.htm');
const sentAttachment = readFileSync(join(work, 'attachment.pdf'));
mkdirSync(shots, { recursive: true });

/// Viewport shots from the top of the page (a focused field may have scrolled it), kept small.
const shot = async (page, name) => {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(shots, `${name}.png`) });
};
const tokenUrl = /\/open\/[A-Za-z0-9_-]{43}$/;
const noHorizontalScroll = (page) =>
  page.evaluate(() => document.scrollingElement.scrollWidth);
const login = async (page, password) => {
  await page.fill('input[name=address]', address);
  await page.fill('input[name=password]', password);
  await submit(page);
};
/// The welcome page: a new password, and the secret question when none is set yet.
const welcome = async (page, password, question) => {
  await page.fill('input[name=password]', password);
  await page.fill('input[name=password2]', password);
  if (question) {
    await page.selectOption('select[name=question]', 'pet');
    await page.fill('input[name=answer]', 'Rex');
  }
};
/// The message page's HTML frame: its text and, once loaded, its images' natural widths.
const bodyFrame = async (page) => {
  const frame = await (await page.waitForSelector('iframe.body')).contentFrame();
  await frame.waitForLoadState('load');
  const text = await frame.evaluate(() => document.body.innerText);
  const images = await frame.evaluate(() =>
    Promise.all(Array.from(document.images).map((img) => (img.complete
      ? null
      : new Promise((r) => { img.onload = r; img.onerror = r; }))))
      .then(() => Array.from(document.images).map((img) => img.naturalWidth)));
  return { text, images };
};

const browser = await launch();
const desktop = { ignoreHTTPSErrors: true, locale: 'en-US', viewport: { width: 1024, height: 720 } };
// The recipient's password as it is now; every step that changes it updates this.
let current = readFileSync(join(work, 'password'), 'utf8').trim();
try {
  const context = await browser.newContext(desktop);
  const page = await context.newPage();
  let messageUrl = null;

  // 0. The carrier as a mail client sees it: no defects under a strict parser, and its
  // text/plain part alone tells the recipient where to go and what to do.
  await step('carrier mail', async () => {
    const view = mail('carrier', outbox);
    check(view.defects.length === 0,
      `the carrier parses under email.policy.strict without defects (${view.defects.join('; ') || 'none'})`);
    const text = view.text || '';
    check(text.includes(base), `the carrier's text/plain part names the portal URL ${base}`);
    check(text.includes('Open the attachment secure.htm in your web browser, press "Open secure message" and sign in'),
      "the carrier's text/plain part says to open secure.htm, press its button and sign in");
    check(text.includes('Why did I get this, and is it genuine?'), "the carrier's text/plain part has the why-block");
  });

  // 1. secure.htm from disk has no script and stays put until its button is pressed; first
  // sign-in; welcome; the message.
  await step('first sign-in', async () => {
    await page.goto('file://' + securePath);
    await page.waitForLoadState('load');
    check((await page.locator('script').count()) === 0, 'secure.htm has no script');
    const host = new URL(base).hostname;
    const secureText = await page.textContent('body');
    check(secureText.includes(`You will be taken to ${host}.`)
        && secureText.includes('Anna Advisor <advisor@bank.example>'),
      `secure.htm names the portal host (${host}) and the sender`);
    await page.waitForTimeout(500);
    check(page.url().startsWith('file://'), 'secure.htm does not submit itself');
    await shot(page, 'secure-htm');
    await Promise.all([page.waitForNavigation(), page.click('#sealpost-form button[type=submit]')]);
    await page.waitForURL(/\/login\?next=\/open\//, { timeout: 15000 });
    check(true, 'one click on secure.htm (file://) posts it and the portal asks for a login');
    check((await page.textContent('main')).includes('Please sign in to read your secure message'),
      'the login page says why');
    await shot(page, 'login');
    await login(page, current);
    check(/\/welcome\?next=\/open\//.test(page.url()),
      'the generated password leads to the welcome page first');
    const chosen = 'Sunny-Harbour-2026';
    await welcome(page, chosen, true);
    await shot(page, 'welcome');
    await submit(page);
    current = chosen;
    check(tokenUrl.test(page.url()), 'after the welcome page the browser is on the message');
    messageUrl = page.url();
  });

  if (messageUrl) {
    await step('reading the message', async () => {
      const h1 = await page.textContent('h1');
      check(h1.includes('Your statement') && !h1.includes('[secure]'),
        `the subject is shown without the trigger (${h1.trim()})`);
      const { text, images } = await bodyFrame(page);
      check(text.includes('Confidential text for the browser'),
        'the HTML body is shown in the sandboxed iframe');
      check(await page.getAttribute('iframe.body', 'sandbox') !== null, 'the iframe is sandboxed');
      check(images.length === 1 && images[0] === sent.image_width,
        `the inline cid: image loads in the frame (naturalWidth ${images.join(',') || 'none'})`);
      await shot(page, 'message');
      const link = page.locator('ul.attachments a', { hasText: sent.attachment });
      const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
      const got = readFileSync(await download.path());
      check(download.suggestedFilename() === sent.attachment,
        `the attachment downloads as ${download.suggestedFilename()}`);
      check(got.equals(sentAttachment), `the downloaded attachment has the sent bytes (${got.length} B)`);
      check(!(await page.textContent('ul.attachments')).includes('logo.png'),
        'the inline image is not listed as an attachment');
    });

    // 2. Secure reply with an attachment.
    await step('secure reply', async () => {
      const replyFile = Buffer.concat([Buffer.from('%PDF-1.4 signed form\n'), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256))]);
      await page.fill('#reply textarea[name=body]', 'Thank you, the signed form is attached.');
      await page.setInputFiles('#reply input[name=attachment]',
        { name: 'signed-form.pdf', mimeType: 'application/pdf', buffer: replyFile });
      await submit(page, '#reply button[type=submit]');
      check(/\/open\/[A-Za-z0-9_-]{43}\/sent$/.test(page.url()), 'the reply leads to the confirmation page');
      check((await page.textContent('main')).includes('advisor@bank.example'),
        'the confirmation names the original sender');
      await shot(page, 'reply-sent');
      const r = mail('reply', outbox, sent.message_id);
      check(r.in_reply_to === sent.message_id,
        `the reply mail (X-Sealpost-Kind: reply) has In-Reply-To of the original (${r.in_reply_to})`);
      check(r.delivered_to === 'advisor@bank.example', `the reply goes to the sender (${r.delivered_to})`);
      check(r.text.includes('Thank you, the signed form is attached.'), 'the reply carries the text');
      const att = r.attachments.find((a) => a.filename === 'signed-form.pdf');
      check(att && Buffer.from(att.b64, 'base64').equals(replyFile),
        'the reply carries the attachment byte for byte');
    });

    await step('profile', async () => {
      await page.goto(`${base}/profile`);
      check((await page.textContent('main')).includes(address), 'the profile page shows the account');
      await shot(page, 'profile');
    });
  }

  // 3. Sign out, then the forgotten password through the secret question.
  await step('forgotten password', async () => {
    await page.goto(`${base}/profile`);
    await submit(page, 'header form.nav button[type=submit]');
    check(/\/login\?bye=1$/.test(page.url()), 'signing out leads back to the login page');
    await submit(page, 'a[href="/forgot"]');
    await page.fill('input[name=address]', address);
    await shot(page, 'forgot-address');
    await submit(page);
    check((await page.textContent('main')).includes('What was the name of your first pet?'),
      'the forgotten-password page asks the chosen question');
    // By default the answer needs the one-time code mailed to the account as well.
    check((await page.textContent('main')).includes('6-digit code has just been sent'),
      'the forgotten-password page says a code was mailed');
    const { code } = mail('code', outbox, address);
    check(/^[0-9]{6}$/.test(code), 'a mail (X-Sealpost-Kind: code) brings a 6-digit code');
    await page.fill('input[name=code]', code);
    await shot(page, 'forgot-code');
    // Answers are compared trimmed and case-folded.
    await page.fill('input[name=answer]', ' rex ');
    await shot(page, 'forgot-question');
    await submit(page);
    const shown = (await page.textContent('#new-password')).trim();
    const recovered = shown.split(/\s+/).pop();
    check(recovered && recovered.length >= 12, 'the right answer shows a new password');
    await shot(page, 'forgot-done');
    await submit(page);
    await login(page, recovered);
    check(/\/welcome/.test(page.url()), 'the shown password signs in and must be changed again');
    check(await page.locator('select[name=question]').count() === 0,
      'the secret question is not asked again');
    const chosen = 'Quiet-Lantern-4711';
    await welcome(page, chosen, false);
    await submit(page);
    current = chosen;
    check(new URL(page.url()).pathname === '/', 'after the change the portal start page opens');
  });

  // 4. An administrator (first sign-in: one-time password, then the mandatory TOTP enrolment)
  // resets the password; the mailed one-time link lets the recipient choose a new one.
  await step('admin reset', async () => {
    const adminContext = await browser.newContext(desktop);
    const admin = await adminContext.newPage();
    await admin.goto(`${base}/admin`);
    check(/\/admin\/login/.test(admin.url()), 'the admin UI asks for a sign-in');
    await admin.fill('input[name=name]', env('ADMIN_NAME'));
    await admin.fill('input[name=password]', env('ADMIN_PASSWORD'));
    await submit(admin);
    check(/\/admin\/password$/.test(admin.url()), 'the one-time admin password must be changed first');
    await admin.fill('input[name=current]', env('ADMIN_PASSWORD'));
    await admin.fill('input[name=new_password]', 'Admin-Harbour-2026!');
    await admin.fill('input[name=repeat]', 'Admin-Harbour-2026!');
    await submit(admin);
    check(/\/admin\/totp$/.test(admin.url()), 'then a second factor must be enrolled');
    const secret = (await admin.textContent('code.secret')).trim();
    check(/^[A-Z2-7]{16,}$/.test(secret), 'the enrolment page shows the base32 key');
    await admin.fill('input[name=code]', totp(secret));
    await shot(admin, 'admin-totp');
    await submit(admin);
    check(new URL(admin.url()).pathname === '/admin' && (await admin.textContent('h1')) === 'Dashboard',
      'after the enrolment the admin dashboard opens');
    await shot(admin, 'admin-dashboard');
    await admin.goto(`${base}/admin/users`);
    await admin.fill('input[name=q]', 'customer');
    await submit(admin, 'main form.actions button[type=submit]');
    await submit(admin, `table a:text-is("${address}")`);
    check(/\/admin\/users\/[^/]+$/.test(admin.url()), 'the admin finds the recipient');
    await submit(admin, 'form[action$="/reset-password"] button');
    check((await admin.textContent('main')).includes(`mailed to ${address}`),
      'the admin page confirms the reset');
    await shot(admin, 'admin-user');
    const { link } = mail('reset', outbox, address);
    check(link.startsWith(`${base}/reset/`),
      `a password-reset mail brings a one-time link to ${base}/reset/…`);
    await adminContext.close();

    const fresh = await browser.newContext(desktop);
    const p = await fresh.newPage();
    await p.goto(`${base}/login`);
    await login(p, current);
    check(p.url().includes('/login') && (await p.locator('.alert').count()) === 1,
      'the previous password no longer signs in');
    await p.goto(link);
    check((await p.textContent('main')).includes(address), 'the link opens a form for the account');
    const chosen = 'Copper-Meadow-8150';
    await p.fill('input[name=password]', chosen);
    await p.fill('input[name=password2]', chosen);
    await shot(p, 'reset-link');
    await submit(p);
    check((await p.locator('p.notice').count()) === 1, 'the link sets the new password');
    await p.goto(link);
    check((await p.locator('p.alert').count()) === 1, 'the link works only once');
    await p.goto(`${base}/login`);
    await login(p, chosen);
    current = chosen;
    check(new URL(p.url()).pathname === '/', 'the recipient is signed in with their own password again');
    await fresh.close();
  });

  // 5. A phone: no horizontal scrolling; secure.htm uploaded on the start page opens.
  await step('phone', async () => {
    const phone = await browser.newContext({
      ignoreHTTPSErrors: true, locale: 'en-US', viewport: { width: 360, height: 740 },
      isMobile: true, hasTouch: true, deviceScaleFactor: 1,
    });
    const p = await phone.newPage();
    await p.goto(`${base}/login`);
    const loginWidth = await noHorizontalScroll(p);
    check(loginWidth <= 360, `phone: the login page fits 360 px (scrollWidth ${loginWidth})`);
    await shot(p, 'phone-login');
    await login(p, current);
    check(new URL(p.url()).pathname === '/', 'phone: signed in on the start page');
    await p.setInputFiles('input[name=file]', securePath);
    await submit(p);
    check(tokenUrl.test(p.url()), 'phone: the uploaded secure.htm opens the message');
    const { text } = await bodyFrame(p);
    check(text.includes('Confidential text for the browser'), 'phone: the message body is shown');
    const messageWidth = await noHorizontalScroll(p);
    check(messageWidth <= 360, `phone: the message page fits 360 px (scrollWidth ${messageWidth})`);
    await shot(p, 'phone-message');
    await phone.close();
  });
  // 6. secure.htm itself loads nothing: with JavaScript its only network request is the form
  // POST to the portal's /open when the button is pressed; without JavaScript it requests
  // nothing and the button works the same.
  await step('secure.htm requests', async () => {
    const fresh = await browser.newContext(desktop);
    const p = await fresh.newPage();
    const requests = [];
    p.on('request', (r) => requests.push({ method: r.method(), url: r.url() }));
    await p.goto('file://' + securePath);
    await p.waitForLoadState('load');
    await p.waitForTimeout(500);
    check(requests.every((r) => r.url.startsWith('file://')), 'secure.htm requests nothing when it is opened');
    await Promise.all([p.waitForNavigation(), p.click('#sealpost-form button[type=submit]')]);
    await p.waitForURL(/\/login\?next=\/open\//, { timeout: 15000 });
    const post = requests.findIndex((r) => r.method === 'POST');
    const before = requests.slice(0, Math.max(post, 0)).filter((r) => !r.url.startsWith('file://'));
    check(post >= 0 && requests[post].url === `${base}/open` && before.length === 0,
      `secure.htm's only request before leaving is the POST to ${base}/open ` +
      `(${requests.slice(0, post + 1).map((r) => `${r.method} ${r.url.startsWith('file://') ? 'file://…' : r.url}`).join(', ')})`);
    const foreign = requests.filter((r) => !r.url.startsWith('file://') && !r.url.startsWith(`${base}/`));
    check(foreign.length === 0,
      `no request goes anywhere but the portal (${foreign.map((r) => r.url).join(', ') || 'none'})`);
    await fresh.close();

    const noJs = await browser.newContext({ ...desktop, javaScriptEnabled: false });
    const q = await noJs.newPage();
    const seen = [];
    q.on('request', (r) => seen.push(r.url()));
    await q.goto('file://' + securePath);
    await q.waitForLoadState('load');
    await q.waitForTimeout(1000);
    const network = seen.filter((u) => !u.startsWith('file://'));
    check(network.length === 0 && q.url().startsWith('file://'),
      `without JavaScript secure.htm makes no network request and stays put (${network.join(', ') || 'none'})`);
    const button = q.locator('#sealpost-form button[type=submit]');
    check(await button.isVisible(), 'without JavaScript the open button is shown');
    await Promise.all([q.waitForNavigation(), button.click()]);
    check(/\/login\?next=\/open\//.test(q.url()),
      'without JavaScript the button submits to the portal, which asks for a login');
    await noJs.close();
  });

  await context.close();
} catch (e) {
  check(false, `browser: ${e.message.split('\n')[0]}`);
} finally {
  await browser.close();
}
finish();
