// The reset-password and verify-email pages. Loaded from a file (never inline)
// so the pages run under the strict Content-Security-Policy.
//
// The token travels in the URL fragment (#token=...): browsers never send a
// fragment to a server, so it is in no access log and no Referer. The script
// reads it, removes it from the address bar (history.replaceState) and posts
// it in a JSON body.
"use strict";

(function () {
  const status = document.getElementById("status");

  function show(message, isError) {
    status.textContent = message;
    status.className = isError ? "error" : "";
  }

  function tokenFromFragment() {
    const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    const token = params.get("token");
    if (token) {
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return token;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
    });
    if (response.ok) {
      return;
    }
    let detail = response.statusText;
    try {
      const answer = await response.json();
      if (answer && answer.description) {
        detail = answer.description;
      }
    } catch (ignored) {
      // not JSON: keep the status text
    }
    throw new Error("Error " + response.status + ": " + detail);
  }

  const token = tokenFromFragment();
  const resetForm = document.getElementById("reset-form");
  const forgotForm = document.getElementById("forgot-form");
  const verify = document.getElementById("verify");

  if (resetForm && token) {
    resetForm.hidden = false;
    resetForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      show("Saving...", false);
      try {
        await post(resetForm.dataset.action,
                   { token: token, password: document.getElementById("password").value });
        resetForm.hidden = true;
        show("Your password was changed. Every session was logged out; log in again.", false);
      } catch (error) {
        show(error.message, true);
      }
    });
  } else if (forgotForm) {
    forgotForm.hidden = false;
    forgotForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      const value = document.getElementById("username").value.trim();
      const body = value.indexOf("@") >= 0 ? { email: value } : { username: value };
      try {
        await post(forgotForm.dataset.action, body);
        forgotForm.hidden = true;
        show("If an account with a verified address matches, a link is on its way.", false);
      } catch (error) {
        show(error.message, true);
      }
    });
  }

  if (verify) {
    if (!token) {
      show("This page needs the link from your verification message.", true);
    } else {
      show("Verifying...", false);
      post(verify.dataset.action, { token: token })
        .then(function () { show("Your email address is verified.", false); })
        .catch(function (error) { show(error.message, true); });
    }
  }
}());
