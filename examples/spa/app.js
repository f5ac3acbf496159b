// The demo single-page app: logs in to gatehouse as the `demo-spa` client with
// oidc-client-ts (authorization code + PKCE), shows the user's claims, refreshes with
// its refresh token, calls userinfo and logs out. It runs on its own origin
// (http://localhost:5173), so every call to gatehouse is a cross-origin request.
//
// One script for both pages: index.html (the app) and callback.html (where gatehouse
// sends the browser back with the code). What happens is written to the console and,
// so that it survives the page changes of a login, to a log kept in sessionStorage and
// shown on the page.

// oidc-client-ts's browser build (loaded by the page) defines `oidc`.
const { Log, UserManager, WebStorageStateStore } = window.oidc;

const LOG_KEY = "demo-spa:log";
const ISSUER_KEY = "demo-spa:issuer";

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

const users = new UserManager({
  authority: issuer,
  client_id: "demo-spa",
  redirect_uri: `${here}/callback.html`,
  post_logout_redirect_uri: `${here}/`,
  scope: "openid profile email invoices:read",
  // Userinfo's claims are merged into the profile at login.
  loadUserInfo: true,
  // Logging out revokes the access and refresh tokens first (RFC 7009).
  revokeTokensOnSignout: true,
  automaticSilentRenew: false,
  userStore: new WebStorageStateStore({ store: sessionStorage }),
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
      `access token expires in ${user.expires_in} s; ` +
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

async function callUserinfo() {
  const user = await users.getUser();
  const endpoint = await users.metadataService.getUserInfoEndpoint();
  const response = await fetch(endpoint, {
    headers: { Authorization: `Bearer ${user.access_token}` },
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`userinfo answered ${response.status}: ${JSON.stringify(body)}`);
  log("info", "userinfo:", body);
  $("userinfo-result").textContent = JSON.stringify(body, null, 2);
  render(user);
}

async function callback() {
  try {
    const user = await users.signinRedirectCallback();
    log("info", `signed in as ${user.profile.preferred_username}; scopes: ${user.scope}`);
    location.replace("./");
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
    history.replaceState(null, "", "./");
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

if (location.pathname.endsWith("/callback.html")) {
  callback();
} else {
  app();
}
