// Passkeys (WebAuthn) for the portal's sign-in page and profile. Served from this origin as
// /static/passkey.js, no inline script (the pages' CSP allows only script-src 'self').
// The server (pages/passkey.rs, webauthn-rs) sends the options as JSON with binary fields in
// base64url; they are turned into ArrayBuffers for the browser, and the browser's answer back
// into base64url JSON. Without PublicKeyCredential nothing is shown.
'use strict';
(function () {
  const script = document.currentScript;
  const failedText = (script && script.dataset.failed) || 'The passkey did not work.';
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  function fromB64url(s) {
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '==='.slice((b64.length + 3) % 4));
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }
  function toB64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = '';
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function descriptors(list) {
    return (list || []).map((c) => Object.assign({}, c, { id: fromB64url(c.id) }));
  }
  async function post(url, fields) {
    const r = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields),
    });
    let body = {};
    try { body = await r.json(); } catch (e) { body = {}; }
    if (!r.ok) throw new Error(body.error || failedText);
    return body;
  }
  // The error line gets its alert style only when shown, so a page without an error has no
  // .alert element (the pages' own errors are .alert).
  function show(el, message) {
    if (!el) return;
    el.textContent = message;
    el.className = 'alert';
    el.hidden = false;
  }

  // Profile: register a passkey (current password first, then the authenticator).
  const add = document.getElementById('passkey-add');
  if (add) {
    const note = document.getElementById('passkey-unsupported');
    if (note) note.hidden = true;
    add.hidden = false;
    const error = document.getElementById('passkey-add-error');
    add.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.hidden = true;
      const button = add.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        const csrf = add.elements.csrf.value;
        const started = await post('/profile/passkeys/register/start', {
          csrf, current: add.elements.current.value,
        });
        const pk = started.options.publicKey;
        pk.challenge = fromB64url(pk.challenge);
        pk.user.id = fromB64url(pk.user.id);
        pk.excludeCredentials = descriptors(pk.excludeCredentials);
        let cred;
        try {
          cred = await navigator.credentials.create({ publicKey: pk });
        } catch (e) {
          throw new Error(failedText);
        }
        const credential = {
          id: cred.id,
          rawId: toB64url(cred.rawId),
          type: cred.type,
          response: {
            attestationObject: toB64url(cred.response.attestationObject),
            clientDataJSON: toB64url(cred.response.clientDataJSON),
          },
          extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
        };
        const done = await post('/profile/passkeys/register/finish', {
          csrf, ceremony: started.ceremony, name: add.elements.name.value,
          credential: JSON.stringify(credential),
        });
        window.location.assign(done.redirect);
      } catch (e) {
        show(error, e.message || failedText);
        button.disabled = false;
      }
    });
  }

  // Sign-in page: a passkey alone (discoverable: the browser picks the account).
  const login = document.getElementById('passkey-login');
  const loginButton = document.getElementById('passkey-login-button');
  if (login && loginButton) {
    login.hidden = false;
    const error = document.getElementById('passkey-login-error');
    loginButton.addEventListener('click', async () => {
      error.hidden = true;
      loginButton.disabled = true;
      try {
        // The sign-in page signs in with the passkey alone; the second step of a sign-in
        // (/login/second) names its own endpoints, which finish the pending sign-in.
        const started = await post(loginButton.dataset.start || '/login/passkey/start', {});
        const pk = started.options.publicKey;
        pk.challenge = fromB64url(pk.challenge);
        pk.allowCredentials = descriptors(pk.allowCredentials);
        let cred;
        try {
          cred = await navigator.credentials.get({ publicKey: pk });
        } catch (e) {
          throw new Error(failedText);
        }
        const r = cred.response;
        const credential = {
          id: cred.id,
          rawId: toB64url(cred.rawId),
          type: cred.type,
          response: {
            authenticatorData: toB64url(r.authenticatorData),
            clientDataJSON: toB64url(r.clientDataJSON),
            signature: toB64url(r.signature),
            userHandle: r.userHandle ? toB64url(r.userHandle) : null,
          },
          extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
        };
        const done = await post(loginButton.dataset.finish || '/login/passkey/finish', {
          ceremony: started.ceremony, next: loginButton.dataset.next || '/',
          credential: JSON.stringify(credential),
        });
        window.location.assign(done.redirect);
      } catch (e) {
        show(error, e.message || failedText);
        loginButton.disabled = false;
      }
    });
  }
})();
