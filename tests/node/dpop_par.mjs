// oauth4webapi (a client library implementing DPoP, RFC 9449, and PAR, RFC 9126)
// against gatehouse, as a public client: discovery, a pushed authorization request
// with a DPoP proof (retrying on a use_dpop_nonce challenge), the login form filled
// in as a browser would, the code exchanged with a proof, userinfo as DPoP and as
// Bearer, a refresh with the same key and one with another key, a replayed proof.
// Driven by tests/it/dpop.rs.
//
// Env: ISSUER, CLIENT_ID, REDIRECT_URI, USERNAME, PASSWORD.
import * as oauth from 'oauth4webapi';

const { ISSUER, CLIENT_ID, REDIRECT_URI, USERNAME, PASSWORD } = process.env;
const insecure = { [oauth.allowInsecureRequests]: true };
const issuer = new URL(ISSUER);
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }),
);
console.log(`discovery: par=${as.pushed_authorization_request_endpoint !== undefined} dpop=${(as.dpop_signing_alg_values_supported ?? []).includes('ES256')}`);

const client = { client_id: CLIENT_ID };
const clientAuth = oauth.None();
const dpop = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));

/** Runs `call` once more after a use_dpop_nonce challenge (the library keeps the nonce). */
async function withNonceRetry(name, call) {
  try {
    return await call();
  } catch (err) {
    if (oauth.isDPoPNonceError(err)) {
      console.log(`${name}: nonce challenge, retried`);
      return await call();
    }
    throw err;
  }
}

const verifier = oauth.generateRandomCodeVerifier();
const challenge = await oauth.calculatePKCECodeChallenge(verifier);
const state = oauth.generateRandomState();
const nonce = oauth.generateRandomNonce();
const params = new URLSearchParams({
  response_type: 'code',
  redirect_uri: REDIRECT_URI,
  scope: 'openid profile offline_access',
  code_challenge: challenge,
  code_challenge_method: 'S256',
  state,
  nonce,
});
const pushed = await withNonceRetry('par', async () =>
  oauth.processPushedAuthorizationResponse(
    as,
    client,
    await oauth.pushedAuthorizationRequest(as, client, clientAuth, params, { DPoP: dpop, ...insecure }),
  ),
);
console.log(`par: request_uri=${pushed.request_uri.startsWith('urn:ietf:params:oauth:request_uri:')}`);

// The browser's part: open /authorize with the request_uri, fill in the login form.
const authorize = new URL(as.authorization_endpoint);
authorize.searchParams.set('client_id', CLIENT_ID);
authorize.searchParams.set('request_uri', pushed.request_uri);
const page = await fetch(authorize, { redirect: 'manual' });
const html = await page.text();
const hidden = (name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1];
const cookies = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
const login = await fetch(new URL('/login', issuer), {
  method: 'POST',
  redirect: 'manual',
  headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies },
  body: new URLSearchParams({
    csrf_token: hidden('csrf_token'),
    request: hidden('request'),
    username: USERNAME,
    password: PASSWORD,
  }),
});
const callback = new URL(login.headers.get('location'));
const answer = oauth.validateAuthResponse(as, client, callback, state);

const tokens = await withNonceRetry('token', async () =>
  oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, clientAuth, answer, REDIRECT_URI, verifier, {
      DPoP: dpop,
      ...insecure,
    }),
    { expectedNonce: nonce },
  ),
);
console.log(`token: type=${tokens.token_type} refresh=${tokens.refresh_token !== undefined}`);

const sub = oauth.getValidatedIdTokenClaims(tokens).sub;
const info = await withNonceRetry('userinfo', async () =>
  oauth.processUserInfoResponse(
    as,
    client,
    sub,
    await oauth.userInfoRequest(as, client, tokens.access_token, { DPoP: dpop, ...insecure }),
  ),
);
console.log(`userinfo dpop: sub=${info.sub === sub}`);
const bearer = await fetch(as.userinfo_endpoint, {
  headers: { authorization: `Bearer ${tokens.access_token}` },
});
console.log(`userinfo bearer: status=${bearer.status} scheme=${(bearer.headers.get('www-authenticate') ?? '').split(' ')[0]}`);

const refreshed = await withNonceRetry('refresh', async () =>
  oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, { DPoP: dpop, ...insecure }),
  ),
);
console.log(`refresh same key: type=${refreshed.token_type}`);

const other = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
try {
  await withNonceRetry('refresh other', async () =>
    oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshed.refresh_token, {
        DPoP: other,
        ...insecure,
      }),
    ),
  );
  console.log('refresh other key: accepted');
} catch (err) {
  console.log(`refresh other key: refused ${err.error ?? err.message}`);
}
console.log('DPOP PAR OK');
