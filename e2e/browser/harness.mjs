// What every browser script shares: its environment, the PASS/FAIL bookkeeping and summary
// line run.sh reads, form submission, and the Chromium launch (Debian's /usr/bin/chromium with
// the flags of a quiet, offline test browser; playwright-core never downloads one).
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

/// A required environment variable (run.sh sets them); missing is a bug of the caller.
export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

let passed = 0;
let failed = 0;

/// The mail side (mail.py, MAIL_PY): sends and reads the maildir next hop; answers JSON.
export const mail = (...args) =>
  JSON.parse(execFileSync('python3', [env('MAIL_PY'), ...args], { encoding: 'utf8' }));

/// Records one check as a PASS or FAIL line; returns `ok`.
export const check = (ok, what) => {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${what}`);
  ok ? passed++ : failed++;
  return ok;
};

/// Runs one part of the path; an exception is a failure of that part, and later parts that
/// need its result are skipped by their own guards. Returns whether it ran through.
export const step = async (what, fn) => {
  try {
    await fn();
    return true;
  } catch (e) {
    check(false, `${what}: ${e.message.split('\n')[0]}`);
    return false;
  }
};

/// Prints "N passed, M failed" and exits non-zero on any failure.
export const finish = () => {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
};

/// Submits a page's form by clicking `selector` and waits for the next page.
export const submit = async (page, selector = 'main form button[type=submit]') => {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
};

const QUIET_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/// Debian's Chromium, headless, with `extra` flags after the quiet ones.
export const launch = (extra = []) => chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [...QUIET_FLAGS, ...extra],
});
