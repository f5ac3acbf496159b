// gatehouse's passkey pages: "Sign in with a passkey" on the login page, creating a
// passkey at /account/passkeys, copying the TOML lines. Served from
// /assets/passkey.js; the pages carry no inline script (CSP script-src 'self').
"use strict";

(function () {
  function encode(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function say(message) {
    const status = document.getElementById("passkey-status");
    if (status) status.textContent = message;
  }

  function supported() {
    if (window.PublicKeyCredential && navigator.credentials) return true;
    say("This browser cannot use passkeys.");
    return false;
  }

  // "Sign in with a passkey" (any of the user's discoverable credentials, user
  // verified) or a passkey as the second factor (only the signed-in user's
  // credentials, presence enough: the password was the first factor).
  const login = document.getElementById("passkey-login") || document.getElementById("passkey-second");
  if (login) {
    const second = login.id === "passkey-second";
    const allow = second && login.dataset.allow ? login.dataset.allow.split(",") : [];
    document.getElementById("passkey-button").addEventListener("click", async () => {
      if (!supported()) return;
      try {
        const credential = await navigator.credentials.get({
          publicKey: {
            challenge: decode(login.dataset.challenge),
            rpId: login.dataset.rpId,
            allowCredentials: allow.map((id) => ({ type: "public-key", id: decode(id) })),
            userVerification: second ? "discouraged" : "required",
            timeout: 120000,
          },
        });
        const response = credential.response;
        login.elements.credential_id.value = encode(credential.rawId);
        login.elements.client_data.value = encode(response.clientDataJSON);
        login.elements.authenticator_data.value = encode(response.authenticatorData);
        login.elements.signature.value = encode(response.signature);
        login.elements.user_handle.value = response.userHandle ? encode(response.userHandle) : "";
        login.submit();
      } catch (e) {
        say(second ? "No passkey was used. Try again." : "No passkey was used. Try again, or sign in with your password.");
      }
    });
  }

  const enrol = document.getElementById("passkey-enrol");
  if (enrol) {
    document.getElementById("passkey-create").addEventListener("click", async () => {
      if (!supported()) return;
      const data = enrol.dataset;
      const exclude = data.exclude ? data.exclude.split(",") : [];
      try {
        const credential = await navigator.credentials.create({
          publicKey: {
            rp: { id: data.rpId, name: data.rpName },
            user: { id: decode(data.userHandle), name: data.userName, displayName: data.displayName },
            challenge: decode(data.challenge),
            pubKeyCredParams: data.algorithms.split(",").map((alg) => ({ type: "public-key", alg: Number(alg) })),
            excludeCredentials: exclude.map((id) => ({ type: "public-key", id: decode(id) })),
            authenticatorSelection: { residentKey: "required", requireResidentKey: true, userVerification: "required" },
            attestation: "none",
            timeout: 120000,
          },
        });
        enrol.elements.credential_id.value = encode(credential.rawId);
        enrol.elements.client_data.value = encode(credential.response.clientDataJSON);
        enrol.elements.attestation_object.value = encode(credential.response.attestationObject);
        enrol.submit();
      } catch (e) {
        say("No passkey was created (" + e.name + "). Try again.");
      }
    });
  }

  const copy = document.getElementById("passkey-copy");
  if (copy) {
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(document.getElementById("passkey-toml").textContent);
        say("Copied.");
      } catch (e) {
        say("Select the lines and copy them.");
      }
    });
  }
})();
