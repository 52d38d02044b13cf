// Passkeys in the browser: WebAuthn JSON options in, credential.toJSON() out.
// Shared by login.js and account.js; loaded from a file (strict CSP, nothing inline).
"use strict";

window.Passkeys = (function () {
  function supported() {
    return Boolean(window.PublicKeyCredential &&
                   PublicKeyCredential.parseCreationOptionsFromJSON &&
                   PublicKeyCredential.parseRequestOptionsFromJSON);
  }

  async function create(options) {
    if (!supported()) throw new Error("This browser cannot use passkeys.");
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
    return (await navigator.credentials.create({ publicKey: publicKey })).toJSON();
  }

  async function get(options) {
    if (!supported()) throw new Error("This browser cannot use passkeys.");
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
    return (await navigator.credentials.get({ publicKey: publicKey })).toJSON();
  }

  return { supported: supported, create: create, get: get };
})();
