// Loads an add-in's plain script into a fresh V8 context with a stubbed host object, the way
// Outlook or Thunderbird would run it, after filling the placeholders the way Sealpost does.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export const FILLED = {
  __SEALPOST_HEADER__: "X-Sealpost-Encrypt",
  __SEALPOST_ORG_NAME__: "Example & Söhne <GmbH>",
  __SEALPOST_PUBLIC_URL__: "https://secure.example.org",
  __SEALPOST_ADDIN_ID__: "0f3e2c1a-9b8d-5e4f-a1b2-c3d4e5f60718",
  __SEALPOST_GECKO_ID__: "{0f3e2c1a-9b8d-5e4f-a1b2-c3d4e5f60718}",
};

export function read(path) {
  return readFileSync(join(root, path), "utf8");
}

const escapeXml = (s) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
const escapeJs = (s) => JSON.stringify(s).slice(1, -1);

// Replaces every placeholder, escaped for the file's language.
export function fill(text, kind) {
  const escape = kind === "xml" ? escapeXml : escapeJs;
  let out = text;
  for (const [k, v] of Object.entries(FILLED)) out = out.split(k).join(escape(v));
  return out;
}

export function run(path, globals) {
  const context = vm.createContext({ console, ...globals });
  vm.runInContext(fill(read(path), "js"), context, { filename: path });
  return context;
}
