/*
 * Sealpost's sender button for Outlook ("Encrypt with Sealpost"): an add-in command
 * (ExecuteFunction) in the compose window. Pressing it sets the trigger header on the message
 * being written, so the organisation's Sealpost gateway encrypts it; pressing it again removes
 * the header. A notification bar in the message says which state it is in.
 *
 * Plain JavaScript, no build step, no network use but Office.js itself. Sealpost fills the
 * placeholders when it serves this file (/addins/outlook/commands.js).
 * The Office object is passed in, so the tests run this file against a stub.
 */
(function (root) {
  "use strict";

  // The header the gateway's default policy honours (policy.trigger_header) and the value that
  // means "encrypt"; any other value (or none) leaves the message to the other rules.
  var HEADER = "__SEALPOST_HEADER__";
  var VALUE = "yes";
  var ORG = "__SEALPOST_ORG_NAME__";
  // One notification key: replaceAsync overwrites the previous message instead of stacking.
  var NOTICE = "sealpost";

  var TEXT = {
    on: "Sealpost: this message will be sent encrypted by " + ORG + ".",
    off: "Sealpost: encryption was removed; this message is sent as usual.",
    unsupported: "Sealpost: this Outlook cannot set message headers (Mailbox 1.8 is needed). " +
      "Write [secure] in the subject instead.",
    failed: "Sealpost: the message could not be marked for encryption: ",
  };

  function office() {
    return root.Office;
  }

  function item() {
    var o = office();
    return o && o.context && o.context.mailbox ? o.context.mailbox.item : null;
  }

  // Whether the header is set to "yes" right now (case-insensitive, as the gateway reads it).
  function isOn(headers) {
    if (!headers) return false;
    var value = headers[HEADER];
    if (value === undefined) {
      // Outlook may hand back the header in a different case.
      var want = HEADER.toLowerCase();
      Object.keys(headers).forEach(function (k) {
        if (k.toLowerCase() === want) value = headers[k];
      });
    }
    return typeof value === "string" && value.trim().toLowerCase() === VALUE;
  }

  function succeeded(result) {
    return result && result.status === office().AsyncResultStatus.Succeeded;
  }

  function errorText(result) {
    var e = result && result.error;
    return (e && (e.message || e.name)) || "unknown error";
  }

  // Shows `message` in the message's notification bar; `done` runs whatever happens, because
  // Outlook waits for event.completed() and shows a spinner until then.
  function notify(kind, message, done) {
    var o = office();
    var it = item();
    var types = o.MailboxEnums.ItemNotificationMessageType;
    var details =
      kind === "error"
        ? { type: types.ErrorMessage, message: message }
        : {
            type: types.InformationalMessage,
            message: message,
            icon: "Icon.16x16",
            persistent: false,
          };
    try {
      it.notificationMessages.replaceAsync(NOTICE, details, function () {
        done();
      });
    } catch (e) {
      done();
    }
  }

  // Sets the header when it is not set, removes it when it is. `callback(error, on)`.
  function toggle(callback) {
    var it = item();
    if (!it || !it.internetHeaders) {
      callback(new Error(TEXT.unsupported));
      return;
    }
    var headers = it.internetHeaders;
    headers.getAsync([HEADER], function (got) {
      if (!succeeded(got)) {
        callback(new Error(TEXT.failed + errorText(got)));
        return;
      }
      if (isOn(got.value)) {
        headers.removeAsync([HEADER], function (removed) {
          if (!succeeded(removed)) callback(new Error(TEXT.failed + errorText(removed)));
          else callback(null, false);
        });
      } else {
        var set = {};
        set[HEADER] = VALUE;
        headers.setAsync(set, function (written) {
          if (!succeeded(written)) callback(new Error(TEXT.failed + errorText(written)));
          else callback(null, true);
        });
      }
    });
  }

  // The add-in command the manifest's button runs (FunctionName toggleSealpost).
  function toggleSealpost(event) {
    var finish = function () {
      if (event && typeof event.completed === "function") event.completed();
    };
    try {
      toggle(function (error, on) {
        if (error) notify("error", error.message, finish);
        else notify("info", on ? TEXT.on : TEXT.off, finish);
      });
    } catch (e) {
      notify("error", TEXT.failed + (e && e.message ? e.message : String(e)), finish);
    }
  }

  root.toggleSealpost = toggleSealpost;
  root.SealpostOutlook = { HEADER: HEADER, VALUE: VALUE, TEXT: TEXT, toggle: toggle, isOn: isOn };

  var o = office();
  if (o && typeof o.onReady === "function") {
    o.onReady(function () {
      // Newer clients look commands up here; older ones call the global function.
      if (o.actions && typeof o.actions.associate === "function") {
        o.actions.associate("toggleSealpost", toggleSealpost);
      }
    });
  }
})(this);
