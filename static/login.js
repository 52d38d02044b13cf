// The login page's behaviour. Loaded from a file (never inline) so the page
// runs under a Content-Security-Policy without 'unsafe-inline'.
"use strict";

(function () {
  const form = document.getElementById("login-form");
  const status = document.getElementById("status");
  const result = document.getElementById("result");
  const tokenBox = document.getElementById("token");
  const answerBox = document.getElementById("answer");

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

  async function logIn(username, password) {
    const response = await fetch(form.action, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ username: username, password: password }),
      credentials: "omit",
    });
    const body = await jsonOf(response);
    if (!response.ok || !body || !body.token) {
      throw new Error(describe(response, body));
    }
    return body.token;
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

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    result.hidden = true;
    tokenBox.textContent = "";
    answerBox.textContent = "";
    show("Logging in\u2026", false);
    try {
      const token = await logIn(form.username.value, form.password.value);
      tokenBox.textContent = token;
      result.hidden = false;
      const answer = await callRestAuth(token);
      answerBox.textContent = JSON.stringify(answer, null, 2);
      show("Logged in.", false);
    } catch (error) {
      // Shown in the page, never thrown to the console.
      show(error instanceof Error ? error.message : String(error), true);
    }
  });
})();
