import { test } from "node:test";
import assert from "node:assert/strict";
import { run, FILLED } from "./helpers.mjs";

const Succeeded = "succeeded";
const Failed = "failed";

// A stub of the part of Office.js the command uses: one compose item with internet headers,
// a notification bar and the async-result convention (callback with {status, value, error}).
function office({ headers = {}, fail = {}, noHeaders = false } = {}) {
  const state = { headers: { ...headers }, notices: [], calls: [] };
  const result = (op, value) =>
    fail[op]
      ? { status: Failed, error: { name: "GenericResponseError", message: fail[op] } }
      : { status: Succeeded, value };
  const internetHeaders = {
    getAsync(names, cb) {
      state.calls.push(["get", names]);
      const value = {};
      for (const n of names) if (n in state.headers) value[n] = state.headers[n];
      cb(result("get", value));
    },
    setAsync(map, cb) {
      state.calls.push(["set", map]);
      if (!fail.set) Object.assign(state.headers, map);
      cb(result("set"));
    },
    removeAsync(names, cb) {
      state.calls.push(["remove", names]);
      if (!fail.remove) for (const n of names) delete state.headers[n];
      cb(result("remove"));
    },
  };
  const item = {
    notificationMessages: {
      replaceAsync(key, details, cb) {
        state.notices.push({ key, ...details });
        cb({ status: Succeeded });
      },
    },
  };
  if (!noHeaders) item.internetHeaders = internetHeaders;
  const Office = {
    AsyncResultStatus: { Succeeded, Failed },
    MailboxEnums: { ItemNotificationMessageType: { InformationalMessage: "info", ErrorMessage: "error" } },
    context: { mailbox: { item } },
    associated: {},
    actions: {
      associate(name, fn) {
        Office.associated[name] = fn;
      },
    },
    onReady(cb) {
      cb({ host: "Outlook" });
    },
  };
  return { Office, state };
}

function press(ctx) {
  return new Promise((resolve) => ctx.toggleSealpost({ completed: () => resolve() }));
}

test("the header name and value are the gateway's trigger", () => {
  const { Office } = office();
  const ctx = run("outlook/commands.js", { Office });
  assert.equal(ctx.SealpostOutlook.HEADER, "X-Sealpost-Encrypt");
  assert.equal(ctx.SealpostOutlook.VALUE, "yes");
  assert.ok(!ctx.SealpostOutlook.TEXT.on.includes("__SEALPOST_"), "placeholders are filled");
  assert.ok(ctx.SealpostOutlook.TEXT.on.includes(FILLED.__SEALPOST_ORG_NAME__));
});

test("the command is registered with Office.actions and as a global", () => {
  const { Office } = office();
  const ctx = run("outlook/commands.js", { Office });
  assert.equal(typeof ctx.toggleSealpost, "function");
  assert.equal(Office.associated.toggleSealpost, ctx.toggleSealpost);
});

test("pressing the button sets X-Sealpost-Encrypt: yes and says so", async () => {
  const { Office, state } = office();
  const ctx = run("outlook/commands.js", { Office });
  await press(ctx);
  assert.deepEqual(state.headers, { "X-Sealpost-Encrypt": "yes" });
  assert.deepEqual(state.calls.map((c) => c[0]), ["get", "set"]);
  assert.equal(state.notices.length, 1);
  assert.equal(state.notices[0].type, "info");
  assert.equal(state.notices[0].key, "sealpost");
  assert.match(state.notices[0].message, /sent encrypted/);
});

test("pressing it again removes the header", async () => {
  const { Office, state } = office();
  const ctx = run("outlook/commands.js", { Office });
  await press(ctx);
  await press(ctx);
  assert.deepEqual(state.headers, {});
  assert.deepEqual(state.calls.map((c) => c[0]), ["get", "set", "get", "remove"]);
  assert.deepEqual([...state.calls[3][1]], ["X-Sealpost-Encrypt"]);
  assert.match(state.notices[1].message, /removed/);
});

test("a header already set in another case or with spaces counts as on", async () => {
  const { Office, state } = office({ headers: { "X-Sealpost-Encrypt": " YES " } });
  const ctx = run("outlook/commands.js", { Office });
  assert.equal(ctx.SealpostOutlook.isOn({ "x-sealpost-encrypt": "yes" }), true);
  assert.equal(ctx.SealpostOutlook.isOn({ "X-Sealpost-Encrypt": "no" }), false);
  assert.equal(ctx.SealpostOutlook.isOn({}), false);
  await press(ctx);
  assert.deepEqual(state.calls.map((c) => c[0]), ["get", "remove"]);
});

test("a header with another value is overwritten with yes", async () => {
  const { Office, state } = office({ headers: { "X-Sealpost-Encrypt": "no" } });
  const ctx = run("outlook/commands.js", { Office });
  await press(ctx);
  assert.equal(state.headers["X-Sealpost-Encrypt"], "yes");
});

for (const op of ["get", "set"]) {
  test(`a failing ${op}Async shows an error and still completes the event`, async () => {
    const { Office, state } = office({ fail: { [op]: "The item is busy" } });
    const ctx = run("outlook/commands.js", { Office });
    await press(ctx);
    assert.equal(state.notices.length, 1);
    assert.equal(state.notices[0].type, "error");
    assert.match(state.notices[0].message, /could not be marked.*The item is busy/);
    assert.deepEqual(state.headers, {});
  });
}

test("a failing removeAsync shows an error and the header stays", async () => {
  const { Office, state } = office({ headers: { "X-Sealpost-Encrypt": "yes" }, fail: { remove: "denied" } });
  const ctx = run("outlook/commands.js", { Office });
  await press(ctx);
  assert.equal(state.notices[0].type, "error");
  assert.match(state.notices[0].message, /denied/);
  assert.equal(state.headers["X-Sealpost-Encrypt"], "yes");
});

test("an Outlook without internetHeaders (below Mailbox 1.8) is told so", async () => {
  const { Office, state } = office({ noHeaders: true });
  const ctx = run("outlook/commands.js", { Office });
  await press(ctx);
  assert.equal(state.notices[0].type, "error");
  assert.match(state.notices[0].message, /Mailbox 1\.8/);
});

test("a throwing host API still completes the event", async () => {
  const { Office, state } = office();
  Office.context.mailbox.item.internetHeaders.getAsync = () => {
    throw new Error("boom");
  };
  const ctx = run("outlook/commands.js", { Office });
  await press(ctx);
  assert.equal(state.notices[0].type, "error");
  assert.match(state.notices[0].message, /boom/);
});

test("the script loads without Office (no host) and does nothing", () => {
  const ctx = run("outlook/commands.js", {});
  assert.equal(typeof ctx.toggleSealpost, "function");
});
