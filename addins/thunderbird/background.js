/*
 * Sealpost's sender button for Thunderbird: a compose_action toggle. While it is on for a
 * compose window, the message sent from that window carries the trigger header, so the
 * organisation's Sealpost gateway encrypts it. The state is per compose tab and ends with it.
 *
 * Plain JavaScript, no build step, no network use. Sealpost fills the placeholders when it
 * builds the .xpi; the tests run this file against a stubbed `browser`.
 */
(function (root) {
  "use strict";

  // The header the gateway's default policy honours (policy.trigger_header); Thunderbird only
  // sends custom headers whose name starts with X-.
  var HEADER = "__SEALPOST_HEADER__";
  var VALUE = "yes";
  var ORG = "__SEALPOST_ORG_NAME__";

  var TITLE_OFF = "Encrypt with Sealpost (" + ORG + ")";
  var TITLE_ON = "Sealpost: this message will be sent encrypted. Click to undo.";

  // tab id -> true, for the compose windows whose toggle is on.
  var encrypted = new Map();

  function api() {
    return root.browser || root.messenger;
  }

  function sameName(a, b) {
    return String(a).toLowerCase() === String(b).toLowerCase();
  }

  // Shows the tab's state on its button: a badge and the tooltip.
  function show(tabId) {
    var action = api().composeAction;
    var on = encrypted.has(tabId);
    return Promise.all([
      action.setBadgeText({ tabId: tabId, text: on ? "\u2713" : "" }),
      action.setTitle({ tabId: tabId, title: on ? TITLE_ON : TITLE_OFF }),
    ]).catch(function (error) {
      // The button's look is a convenience; the state that matters is in `encrypted`.
      console.warn("Sealpost: could not update the button", error);
    });
  }

  function toggle(tab) {
    if (!tab || typeof tab.id !== "number") return Promise.resolve(false);
    if (encrypted.has(tab.id)) encrypted.delete(tab.id);
    else encrypted.set(tab.id, true);
    return show(tab.id).then(function () {
      return encrypted.has(tab.id);
    });
  }

  // The custom headers the message leaves with: the sender's own ones kept, ours replaced
  // (customHeaders replaces the whole list, so dropping the others would lose them).
  function headersFor(tabId, existing) {
    var kept = (Array.isArray(existing) ? existing : []).filter(function (h) {
      return h && !sameName(h.name, HEADER);
    });
    if (encrypted.has(tabId)) kept.push({ name: HEADER, value: VALUE });
    return kept;
  }

  // compose.onBeforeSend: for a tab whose toggle is on, the header goes with the message.
  // A tab whose toggle is off changes nothing (a header the sender typed in stays).
  function beforeSend(tab, details) {
    if (!tab || !encrypted.has(tab.id)) return {};
    var existing = details && details.customHeaders;
    return { details: { customHeaders: headersFor(tab.id, existing) } };
  }

  function forget(tabId) {
    encrypted.delete(tabId);
  }

  root.SealpostThunderbird = {
    HEADER: HEADER,
    VALUE: VALUE,
    toggle: toggle,
    beforeSend: beforeSend,
    headersFor: headersFor,
    forget: forget,
    isOn: function (tabId) {
      return encrypted.has(tabId);
    },
  };

  var b = api();
  if (b && b.compose && b.composeAction) {
    b.composeAction.onClicked.addListener(toggle);
    b.compose.onBeforeSend.addListener(beforeSend);
    if (b.tabs && b.tabs.onRemoved) b.tabs.onRemoved.addListener(forget);
  }
})(this);
