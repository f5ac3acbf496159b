// The demo single-page app: logs in to gatehouse as the `demo-spa` client with
// oidc-client-ts (authorization code + PKCE), shows the user's claims, refreshes with
// its refresh token, calls userinfo and logs out. It runs on its own origin
// (http://localhost:5173), so every call to gatehouse is a cross-origin request.
//
// One script for the pages: index.html (the app), dpop.html (the same app as the
// `demo-spa-dpop` client, whose tokens are DPoP-bound: RFC 9449) and callback.html
// (where gatehouse sends the browser back with the code). What happens is written to the console and,
// so that it survives the page changes of a login, to a log kept in sessionStorage and
// shown on the page.

// oidc-client-ts's browser build (loaded by the page) defines `oidc`.
const { IndexedDbDPoPStore, Log, UserManager, WebStorageStateStore } = window.oidc;

const LOG_KEY = "demo-spa:log";
const ISSUER_KEY = "demo-spa:issuer";
const MODE_KEY = "demo-spa:mode";

const $ = (id) => document.getElementById(id);

function show(text) {
  const pre = $("log");
  if (pre) pre.textContent = text;
}

/** Writes one line to the console and to the page's log. */
function log(level, ...parts) {
  const line = parts
    .map((p) => (p instanceof Error ? p.message : typeof p === "string" ? p : JSON.stringify(p)))
    .join(" ");
  (console[level] ?? console.log)(line);
  const all = `${sessionStorage.getItem(LOG_KEY) ?? ""}${level}: ${line}\n`;
  sessionStorage.setItem(LOG_KEY, all);
  show(all);
}

Log.setLevel(Log.INFO);
Log.setLogger({
  debug: (...a) => log("debug", ...a),
  info: (...a) => log("info", ...a),
  warn: (...a) => log("warn", ...a),
  error: (...a) => log("error", ...a),
});
window.addEventListener("unhandledrejection", (e) => log("error", "unhandled:", e.reason));

// The issuer: http://127.0.0.1:8080 (the example config), or ?issuer=... once.
const query = new URLSearchParams(location.search);
if (query.get("issuer")) sessionStorage.setItem(ISSUER_KEY, query.get("issuer"));
const issuer = sessionStorage.getItem(ISSUER_KEY) ?? "http://127.0.0.1:8080";
const here = location.origin;

// dpop.html is the app with DPoP; the callback page goes on in the mode of the page
// that sent the browser to log in.
const onCallback = location.pathname.endsWith("/callback.html");
if (!onCallback) {
  sessionStorage.setItem(MODE_KEY, location.pathname.endsWith("/dpop.html") ? "dpop" : "plain");
}
const dpop = sessionStorage.getItem(MODE_KEY) === "dpop";
const home = dpop ? "./dpop.html" : "./";

const users = new UserManager({
  authority: issuer,
  client_id: dpop ? "demo-spa-dpop" : "demo-spa",
  redirect_uri: `${here}/callback.html`,
  post_logout_redirect_uri: dpop ? `${here}/dpop.html` : `${here}/`,
  scope: "openid profile email invoices:read",
  // Userinfo's claims are merged into the profile at login. With DPoP the ID token's
  // claims are the profile: oidc-client-ts calls userinfo at login as Bearer, which
  // gatehouse refuses for a DPoP-bound token; this app calls it with a proof below.
  loadUserInfo: !dpop,
  // Logging out revokes the access and refresh tokens first (RFC 7009).
  revokeTokensOnSignout: true,
  automaticSilentRenew: false,
  userStore: new WebStorageStateStore({ store: sessionStorage }),
  // DPoP: a P-256 key made in this browser (not extractable) and kept in IndexedDB;
  // its thumbprint goes to /authorize as dpop_jkt, which binds the code to it, and
  // every token request carries a proof signed with it (retried once with the
  // server's nonce when it asks for one).
  ...(dpop ? { dpop: { bind_authorization_code: true, store: new IndexedDbDPoPStore() } } : {}),
});

function setState(state, status) {
  document.body.dataset.state = state;
  $("status").textContent = status;
}

function render(user) {
  for (const id of ["login", "refresh", "userinfo", "logout"]) $(id).disabled = true;
  $("issuer").textContent = issuer;
  if (!user || user.expired) {
    setState("signed-out", "Signed out.");
    $("claims").textContent = "";
    $("login").disabled = false;
    return;
  }
  setState(
    "signed-in",
    `Signed in as ${user.profile.name ?? user.profile.sub} (sub ${user.profile.sub}); ` +
      `${user.token_type} access token expires in ${user.expires_in} s; ` +
      `refresh token: ${user.refresh_token ? "yes" : "no"}.`,
  );
  $("claims").textContent = JSON.stringify(user.profile, null, 2);
  for (const id of ["refresh", "userinfo", "logout"]) $(id).disabled = false;
}

/** Runs a button's action, logging what fails instead of leaving the page stuck. */
function action(id, run) {
  $(id).addEventListener("click", async () => {
    setState("busy", "Working…");
    try {
      await run();
    } catch (e) {
      log("error", `${id} failed:`, e);
      setState("error", `${id} failed: ${e.message}`);
    }
  });
}

/**
 * GET `endpoint` with the user's access token: as Bearer, or with DPoP as
 * `Authorization: DPoP` and a proof of the token's hash by the key (RFC 9449 7),
 * once more with the nonce the server gives if it asks for one (RFC 9449 9).
 */
async function getWithToken(endpoint, user) {
  if (!dpop) {
    return fetch(endpoint, { headers: { Authorization: `Bearer ${user.access_token}` } });
  }
  const send = async (nonce) =>
    fetch(endpoint, {
      headers: {
        Authorization: `DPoP ${user.access_token}`,
        DPoP: await users.dpopProof(endpoint, user, "GET", nonce),
      },
    });
  const response = await send();
  const nonce = response.headers.get("DPoP-Nonce");
  if (response.status === 401 && nonce) return send(nonce);
  return response;
}

async function callUserinfo() {
  const user = await users.getUser();
  const endpoint = await users.metadataService.getUserInfoEndpoint();
  const response = await getWithToken(endpoint, user);
  const body = await response.json();
  if (!response.ok) throw new Error(`userinfo answered ${response.status}: ${JSON.stringify(body)}`);
  log("info", "userinfo:", body);
  $("userinfo-result").textContent = JSON.stringify(body, null, 2);
  render(user);
}

async function callback() {
  try {
    const user = await users.signinRedirectCallback();
    log("info", `signed in as ${user.profile.preferred_username}; scopes: ${user.scope}; token type: ${user.token_type}`);
    location.replace(home);
  } catch (e) {
    log("error", "sign-in failed:", e);
    setState("error", `Sign-in failed: ${e.message}`);
  }
}

async function app() {
  show(sessionStorage.getItem(LOG_KEY) ?? "");
  // Back from gatehouse's logout: `state` names the sign-out request.
  if (query.has("state") && !query.has("code")) {
    await users.signoutRedirectCallback();
    log("info", "signed out at gatehouse and back");
    history.replaceState(null, "", home);
  }
  action("login", async () => {
    log("info", `logging in at ${issuer}`);
    await users.signinRedirect();
  });
  action("refresh", async () => {
    const before = await users.getUser();
    const user = await users.signinSilent();
    const rotated = before.refresh_token !== user.refresh_token;
    log("info", `refreshed with the refresh token: new access token (expires in ${user.expires_in} s), refresh token rotated: ${rotated}`);
    render(user);
  });
  action("userinfo", callUserinfo);
  action("logout", async () => {
    log("info", "logging out: revoking the tokens, then gatehouse's logout");
    await users.signoutRedirect({ state: { from: "demo-spa" } });
  });
  render(await users.getUser());
}

if (onCallback) {
  callback();
} else {
  app();
}
