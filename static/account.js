// The account part of the login page: sessions, authenticator app, recovery
// codes, passkeys and the recent security events. Starts when login.js announces a login ("logged-in").
// Loaded from a file (strict CSP: nothing inline, no eval, no inline styles).
"use strict";

(function () {
  const $ = function (id) { return document.getElementById(id); };
  const section = $("account");
  const status = $("account-status");
  let token = null;

  function say(message, isError) {
    status.textContent = message;
    status.className = isError ? "error" : "";
  }

  async function call(method, url, payload) {
    const init = {
      method: method,
      headers: { "Authorization": "Bearer " + token, "Accept": "application/json" },
      credentials: "omit",
    };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    const response = await fetch(url, init);
    let body = null;
    try { body = await response.json(); } catch (ignored) { body = null; }
    if (!response.ok) {
      const detail = body && body.description ? body.description : response.statusText;
      const error = new Error("Error " + response.status + ": " + detail);
      error.reauth = Boolean(body && body.reauth_required);
      throw error;
    }
    return body;
  }

  // Run an action; failures are shown in the page, never thrown to the console.
  async function act(action) {
    try {
      await action();
    } catch (error) {
      say(error.reauth ? "Log in again to do this (your login is too old)." :
        (error instanceof Error ? error.message : String(error)), true);
    }
  }

  function item(text, buttonLabel, onClick) {
    const li = document.createElement("li");
    const span = document.createElement("span");
    span.textContent = text;
    li.appendChild(span);
    if (buttonLabel) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = buttonLabel;
      button.addEventListener("click", function () { act(onClick); });
      li.appendChild(document.createTextNode(" "));
      li.appendChild(button);
    }
    return li;
  }

  async function loadSessions() {
    const body = await call("GET", "/sessions");
    const list = $("sessions");
    list.replaceChildren();
    body.sessions.forEach(function (s) {
      const label = (s.current ? "This session" : "Session") + " \u2014 " + (s.user_agent || "unknown client") +
        ", last used " + s.last_used;
      list.appendChild(item(label, s.current ? null : "Revoke", async function () {
        await call("DELETE", "/sessions/" + s.id);
        say("Session revoked.", false);
        await loadSessions();
      }));
    });
  }

  function showRecoveryCodes(codes) {
    $("recovery-codes").textContent = codes.join("\n");
    $("recovery-box").hidden = false;
  }

  async function loadFactors() {
    const body = await call("GET", "/mfa");
    $("totp-state").textContent = body.totp ? "On." : "Off.";
    $("totp-start").hidden = body.totp;
    $("totp-off-form").hidden = !body.totp;
    const anyFactor = body.totp || body.passkeys > 0;
    $("recovery-state").textContent = anyFactor ? body.recovery_codes_left + " unused recovery codes." :
      "Recovery codes come with your first second factor.";
    $("recovery-new").hidden = !anyFactor;
    const passkeys = await call("GET", "/webauthn/credentials");
    const list = $("passkeys");
    list.replaceChildren();
    passkeys.credentials.forEach(function (p) {
      list.appendChild(item(p.name + " (added " + p.created + ")", "Remove", async function () {
        await call("DELETE", "/webauthn/credentials/" + p.id);
        say("Passkey removed.", false);
        await loadFactors();
      }));
    });
    await loadEvents();  // every factor change is an event: show it
  }

  // What each security event kind says to the account's owner (GET /users/<id>/events).
  const EVENT_LABELS = {
    login_succeeded: "Logged in", login_failed: "Failed login", login_throttled: "Login delayed (too many failures)",
    refresh_reuse: "A used refresh token came back (sessions revoked)", logout_all: "Logged out everywhere",
    password_changed: "Password changed", password_reset: "Password reset",
    password_reset_requested: "Password reset requested", email_changed: "Email address changed",
    email_verified: "Email address verified", admin_changed: "Admin rights changed",
    account_deleted: "Account deleted", totp_enabled: "Authenticator app turned on",
    totp_disabled: "Authenticator app turned off", recovery_codes_regenerated: "New recovery codes made",
    recovery_code_used: "Recovery code used", passkey_added: "Passkey added", passkey_removed: "Passkey removed",
    mfa_login_succeeded: "Second step of a login passed", mfa_login_failed: "Second step of a login failed",
    mfa_token_rejected: "Second step refused (expired or used)", mfa_reset: "Second factors reset by an operator",
  };
  const EVENTS_SHOWN = 10;

  // The account's id: the token's `sub` (the page holds the token it just got).
  function userId() {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - part.length % 4) % 4))).sub;
  }

  async function loadEvents() {
    const body = await call("GET", "/users/" + encodeURIComponent(userId()) + "/events?limit=" + EVENTS_SHOWN);
    const list = $("events");
    list.replaceChildren();
    body.events.forEach(function (e) {
      const label = (EVENT_LABELS[e.kind] || e.kind) + (e.detail ? " (" + e.detail + ")" : "") +
        " \u2014 " + e.created + (e.ip ? ", from " + e.ip : "");
      const li = item(label);
      li.dataset.kind = e.kind;
      list.appendChild(li);
    });
    $("events-state").textContent = body.events.length ? "" : "No security events yet.";
  }

  // segno's SVG, parsed as SVG (never as HTML) and adopted into the page.
  function showQr(svgText) {
    const svg = new DOMParser().parseFromString(svgText, "image/svg+xml").documentElement;
    $("totp-qr").replaceChildren(document.importNode(svg, true));
  }

  $("totp-start").addEventListener("click", function () {
    act(async function () {
      const body = await call("POST", "/mfa/totp");
      showQr(body.qr_svg);
      $("totp-secret").textContent = body.secret;
      $("totp-setup").hidden = false;
      $("totp-code").focus();
    });
  });

  $("totp-confirm-form").addEventListener("submit", function (event) {
    event.preventDefault();
    act(async function () {
      const body = await call("POST", "/mfa/totp/confirm", { code: $("totp-code").value.trim() });
      $("totp-setup").hidden = true;
      $("totp-qr").replaceChildren();
      $("totp-secret").textContent = "";
      showRecoveryCodes(body.recovery_codes);
      say("Authenticator app turned on.", false);
      await loadFactors();
    });
  });

  $("totp-off-form").addEventListener("submit", function (event) {
    event.preventDefault();
    act(async function () {
      await call("DELETE", "/mfa/totp", { password: $("totp-off-password").value,
                                         code: $("totp-off-code").value.trim() });
      say("Authenticator app turned off.", false);
      await loadFactors();
    });
  });

  $("recovery-new").addEventListener("click", function () {
    act(async function () {
      showRecoveryCodes((await call("POST", "/mfa/recovery-codes")).recovery_codes);
      say("New recovery codes made; the old ones no longer work.", false);
      await loadFactors();
    });
  });

  $("passkey-add").addEventListener("click", function () {
    act(async function () {
      const options = await call("POST", "/webauthn/register/options");
      const credential = await window.Passkeys.create(options);
      const body = await call("POST", "/webauthn/register/verify", credential);
      if (body.recovery_codes) showRecoveryCodes(body.recovery_codes);
      say("Passkey added.", false);
      await loadFactors();
    });
  });

  document.addEventListener("logged-in", function (event) {
    token = event.detail.access_token;
    section.hidden = false;
    $("recovery-box").hidden = true;
    say("", false);
    act(async function () { await loadSessions(); await loadFactors(); });
  });
})();
