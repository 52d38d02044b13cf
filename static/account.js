// The account part of the login page: sessions, authenticator app, recovery
// codes and passkeys. Starts when login.js announces a login ("logged-in").
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
