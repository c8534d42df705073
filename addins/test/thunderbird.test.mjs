import { test } from "node:test";
import assert from "node:assert/strict";
import { run } from "./helpers.mjs";

// A stub of the MailExtension APIs the background script uses: listeners are recorded so the
// test can fire them, the button's per-tab look is recorded so the test can read it.
function browser({ failBadge = false } = {}) {
  const listeners = { clicked: [], beforeSend: [], removed: [] };
  const look = {};
  const event = (list) => ({ addListener: (fn) => list.push(fn) });
  const b = {
    composeAction: {
      onClicked: event(listeners.clicked),
      setBadgeText: async ({ tabId, text }) => {
        if (failBadge) throw new Error("no window");
        look[tabId] = { ...look[tabId], badge: text };
      },
      setTitle: async ({ tabId, title }) => {
        look[tabId] = { ...look[tabId], title };
      },
    },
    compose: { onBeforeSend: event(listeners.beforeSend) },
    tabs: { onRemoved: event(listeners.removed) },
  };
  return { b, listeners, look };
}

const plain = (v) => JSON.parse(JSON.stringify(v));

async function click(listeners, tab) {
  for (const fn of listeners.clicked) await fn(tab);
}
async function send(listeners, tab, details = {}) {
  const results = await Promise.all(listeners.beforeSend.map((fn) => fn(tab, details)));
  return plain(results[0]);
}

test("the script registers the click, send and tab-closed listeners", () => {
  const { b, listeners } = browser();
  run("thunderbird/background.js", { browser: b });
  assert.equal(listeners.clicked.length, 1);
  assert.equal(listeners.beforeSend.length, 1);
  assert.equal(listeners.removed.length, 1);
});

test("the messenger alias works as well as browser", () => {
  const { b, listeners } = browser();
  run("thunderbird/background.js", { messenger: b });
  assert.equal(listeners.beforeSend.length, 1);
});

test("a tab whose toggle is off sends unchanged", async () => {
  const { b, listeners } = browser();
  run("thunderbird/background.js", { browser: b });
  assert.deepEqual(await send(listeners, { id: 1 }, { customHeaders: [] }), {});
});

test("toggled on, the message carries X-Sealpost-Encrypt: yes", async () => {
  const { b, listeners, look } = browser();
  const ctx = run("thunderbird/background.js", { browser: b });
  await click(listeners, { id: 7 });
  assert.equal(ctx.SealpostThunderbird.isOn(7), true);
  assert.deepEqual(await send(listeners, { id: 7 }, { customHeaders: [] }), {
    details: { customHeaders: [{ name: "X-Sealpost-Encrypt", value: "yes" }] },
  });
  assert.equal(look[7].badge, "\u2713");
  assert.match(look[7].title, /sent encrypted/);
});

test("toggled off again, nothing is added", async () => {
  const { b, listeners, look } = browser();
  run("thunderbird/background.js", { browser: b });
  await click(listeners, { id: 7 });
  await click(listeners, { id: 7 });
  assert.deepEqual(await send(listeners, { id: 7 }, {}), {});
  assert.equal(look[7].badge, "");
  assert.match(look[7].title, /^Encrypt with Sealpost/);
});

test("the state is per compose tab", async () => {
  const { b, listeners } = browser();
  run("thunderbird/background.js", { browser: b });
  await click(listeners, { id: 1 });
  assert.ok((await send(listeners, { id: 1 })).details);
  assert.deepEqual(await send(listeners, { id: 2 }), {});
});

test("the sender's other custom headers are kept, a stale copy of ours replaced", async () => {
  const { b, listeners } = browser();
  run("thunderbird/background.js", { browser: b });
  await click(listeners, { id: 3 });
  const result = await send(listeners, { id: 3 }, {
    customHeaders: [
      { name: "X-Ticket", value: "42" },
      { name: "x-sealpost-encrypt", value: "no" },
    ],
  });
  assert.deepEqual(result.details.customHeaders, [
    { name: "X-Ticket", value: "42" },
    { name: "X-Sealpost-Encrypt", value: "yes" },
  ]);
});

test("closing the tab forgets its state (a reused id starts off)", async () => {
  const { b, listeners } = browser();
  const ctx = run("thunderbird/background.js", { browser: b });
  await click(listeners, { id: 9 });
  listeners.removed[0](9, {});
  assert.equal(ctx.SealpostThunderbird.isOn(9), false);
  assert.deepEqual(await send(listeners, { id: 9 }), {});
});

test("a failing button update does not lose the state", async () => {
  const { b, listeners } = browser({ failBadge: true });
  const ctx = run("thunderbird/background.js", { browser: b, console: { warn() {} } });
  await click(listeners, { id: 4 });
  assert.equal(ctx.SealpostThunderbird.isOn(4), true);
  assert.ok((await send(listeners, { id: 4 })).details);
});

test("a click without a tab changes nothing", async () => {
  const { b } = browser();
  const ctx = run("thunderbird/background.js", { browser: b });
  assert.equal(await ctx.SealpostThunderbird.toggle(undefined), false);
});
