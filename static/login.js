// The login page's behaviour. Loaded from a file (never inline) so the page
// runs under a Content-Security-Policy without 'unsafe-inline'.
// Logs in with a password (then, for accounts with a second factor, a code,
// a recovery code or a passkey) or with a passkey alone; then shows the token
// and /rest-auth's answer, and tells account.js ("logged-in" event).
"use strict";

(function () {
  const form = document.getElementById("login-form");
  const status = document.getElementById("status");
  const result = document.getElementById("result");
  const tokenBox = document.getElementById("token");
  const answerBox = document.getElementById("answer");
  const mfaForm = document.getElementById("mfa-form");
  const mfaCode = document.getElementById("mfa-code");
  const mfaPasskey = document.getElementById("mfa-passkey");
  const passkeyLogin = document.getElementById("passkey-login");
  let mfaToken = null;

  function show(message, isError) {
    status.textContent = message;
    status.className = isError ? "error" : "";
  }

  // The body of a response as JSON, or null when it is not JSON.
  async function jsonOf(response) {
    try {
      return await response.json();
    } catch (ignored) {
      return null;
    }
  }

  // The service's error shape is {status_code, error, description[, field]}.
  function describe(response, body) {
    const detail = body && body.description ? body.description : response.statusText;
    return "Error " + response.status + ": " + detail;
  }

  async function post(url, payload) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(payload || {}),
      credentials: "omit",
    });
    return { response: response, body: await jsonOf(response) };
  }

  // Tokens, or null when a second step is needed (the form for it is shown).
  async function logIn(username, password) {
    const answer = await post(form.action, { username: username, password: password });
    if (answer.response.status === 401 && answer.body && answer.body.mfa_required) {
      mfaToken = answer.body.mfa_token;
      mfaPasskey.hidden = answer.body.methods.indexOf("webauthn") < 0;
      mfaForm.hidden = false;
      mfaCode.value = "";
      mfaCode.focus();
      show("Enter the code from your authenticator app (or a recovery code).", false);
      return null;
    }
    if (!answer.response.ok || !answer.body || !answer.body.token) {
      throw new Error(describe(answer.response, answer.body));
    }
    return answer.body;
  }

  async function secondStep(factor) {
    factor.mfa_token = mfaToken;
    const answer = await post("/auth/mfa", factor);
    if (!answer.response.ok || !answer.body || !answer.body.access_token) {
      throw new Error(describe(answer.response, answer.body));
    }
    mfaToken = null;
    mfaForm.hidden = true;
    return answer.body;
  }

  async function withPasskey(optionsUrl, optionsBody) {
    const options = await post(optionsUrl, optionsBody);
    if (!options.response.ok) throw new Error(describe(options.response, options.body));
    return window.Passkeys.get(options.body);
  }

  async function callRestAuth(token) {
    const response = await fetch(form.dataset.restAuth, {
      headers: { "Authorization": "Bearer " + token, "Accept": "application/json" },
      credentials: "omit",
    });
    const body = await jsonOf(response);
    if (!response.ok) {
      throw new Error(describe(response, body));
    }
    return body;
  }

  async function finish(tokens) {
    tokenBox.textContent = tokens.access_token;
    result.hidden = false;
    const answer = await callRestAuth(tokens.access_token);
    answerBox.textContent = JSON.stringify(answer, null, 2);
    show("Logged in.", false);
    document.dispatchEvent(new CustomEvent("logged-in", { detail: tokens }));
  }

  // Run a step of the login; every failure is shown in the page, never thrown to the console.
  async function attempt(step) {
    try {
      const tokens = await step();
      if (tokens) await finish(tokens);
    } catch (error) {
      show(error instanceof Error ? error.message : String(error), true);
    }
  }

  function reset() {
    result.hidden = true;
    tokenBox.textContent = "";
    answerBox.textContent = "";
    show("Logging in\u2026", false);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    reset();
    mfaForm.hidden = true;
    attempt(function () { return logIn(form.username.value, form.password.value); });
  });

  mfaForm.addEventListener("submit", function (event) {
    event.preventDefault();
    const value = mfaCode.value.trim();
    // Six digits are an app's code; anything longer is a recovery code.
    const factor = /^[0-9]{6}$/.test(value) ? { code: value } : { recovery_code: value };
    reset();
    attempt(function () { return secondStep(factor); });
  });

  mfaPasskey.addEventListener("click", function () {
    reset();
    attempt(async function () {
      const credential = await withPasskey("/webauthn/mfa/options", { mfa_token: mfaToken });
      return secondStep({ credential: credential });
    });
  });

  passkeyLogin.addEventListener("click", function () {
    reset();
    mfaForm.hidden = true;
    attempt(async function () {
      const credential = await withPasskey("/webauthn/login/options");
      const answer = await post("/webauthn/login/verify", credential);
      if (!answer.response.ok) throw new Error(describe(answer.response, answer.body));
      return answer.body;
    });
  });
})();
