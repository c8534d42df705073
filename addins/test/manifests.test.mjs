import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { validateXML } from "xmllint-wasm";
import { read, fill, root, FILLED } from "./helpers.mjs";

// The Outlook manifest as Sealpost serves it (placeholders filled, XML-escaped) must be
// well-formed XML; xmllint (WebAssembly build, offline) parses it.
test("the filled Outlook manifest is well-formed XML", async () => {
  const xml = fill(read("outlook/manifest.xml"), "xml");
  assert.ok(!xml.includes("__SEALPOST_"), "no placeholder left");
  const result = await validateXML({ xml: [{ fileName: "manifest.xml", contents: xml }], normalization: "format" });
  assert.deepEqual(result.errors, []);
  assert.ok(result.valid);
});

test("the Outlook manifest asks for Mailbox 1.8 and runs toggleSealpost in compose", () => {
  const xml = fill(read("outlook/manifest.xml"), "xml");
  assert.match(xml, /xsi:type="MailApp"/);
  assert.match(xml, /<Id>0f3e2c1a-9b8d-5e4f-a1b2-c3d4e5f60718<\/Id>/);
  assert.match(xml, /<bt:Sets DefaultMinVersion="1\.8">\s*<bt:Set Name="Mailbox"\/>/);
  assert.match(xml, /<ExtensionPoint xsi:type="MessageComposeCommandSurface">/);
  assert.match(xml, /<Action xsi:type="ExecuteFunction">\s*<FunctionName>toggleSealpost<\/FunctionName>/);
  assert.match(xml, /DefaultValue="Encrypt with Sealpost"/);
  assert.match(xml, /<Permissions>ReadWriteItem<\/Permissions>/);
  assert.match(xml, /<ProviderName>Example &amp; Söhne &lt;GmbH&gt;<\/ProviderName>/);
  // Every URL in it is on the portal, over https, and every hosted file exists in outlook/.
  const urls = [...xml.matchAll(/DefaultValue="(https?:[^"]*)"/g)].map((m) => m[1]);
  assert.ok(urls.length >= 6);
  const files = readdirSync(join(root, "outlook"));
  for (const url of urls) {
    assert.ok(url.startsWith(FILLED.__SEALPOST_PUBLIC_URL__ + "/"), url);
    const file = url.slice((FILLED.__SEALPOST_PUBLIC_URL__ + "/addins/outlook/").length);
    if (url.includes("/addins/outlook/")) assert.ok(files.includes(file), `${file} is shipped`);
  }
});

test("the Outlook manifest's resource ids are all defined", () => {
  const xml = read("outlook/manifest.xml");
  const defined = new Set([...xml.matchAll(/<bt:(?:Image|Url|String) id="([^"]+)"/g)].map((m) => m[1]));
  const used = [...xml.matchAll(/resid="([^"]+)"/g)].map((m) => m[1]);
  assert.ok(used.length > 0);
  for (const id of used) assert.ok(defined.has(id), `resid ${id} is defined`);
  // The notification icon the command names is one of them.
  assert.ok(read("outlook/commands.js").includes('"Icon.16x16"') && defined.has("Icon.16x16"));
});

test("commands.html loads Office.js from Microsoft's CDN and the command script, nothing else", () => {
  const html = read("outlook/commands.html");
  const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(scripts, ["https://appsforoffice.microsoft.com/lib/1/hosted/office.js", "commands.js"]);
});

test("the Thunderbird manifest has the fields Thunderbird requires", () => {
  const m = JSON.parse(fill(read("thunderbird/manifest.json"), "json"));
  assert.ok(m.manifest_version === 2 || m.manifest_version === 3);
  assert.equal(typeof m.name, "string");
  assert.ok(m.name.includes(FILLED.__SEALPOST_ORG_NAME__));
  assert.match(m.version, /^\d+(\.\d+){0,3}$/);
  assert.equal(m.browser_specific_settings.gecko.id, FILLED.__SEALPOST_GECKO_ID__);
  assert.match(m.browser_specific_settings.gecko.strict_min_version, /^\d+\.\d+$/);
  assert.ok(Number.parseInt(m.browser_specific_settings.gecko.strict_min_version, 10) >= 128);
  assert.deepEqual(m.permissions, ["compose"]);
  assert.deepEqual(m.background.scripts, ["background.js"]);
  assert.equal(m.compose_action.default_title, "Encrypt with Sealpost");
  const files = readdirSync(join(root, "thunderbird"));
  for (const icon of [...Object.values(m.compose_action.default_icon), ...Object.values(m.icons)]) {
    assert.ok(files.includes(icon), `${icon} is shipped`);
  }
});

test("the icons are PNG files", () => {
  for (const dir of ["outlook", "thunderbird"]) {
    for (const f of readdirSync(join(root, dir)).filter((f) => f.endsWith(".png"))) {
      const bytes = Buffer.from(read(join(dir, f)), "latin1");
      assert.equal(read(join(dir, f)).slice(1, 4), "PNG", `${dir}/${f}`);
      assert.ok(bytes.length > 50);
    }
  }
});
