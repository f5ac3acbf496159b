// openid-client (v6) as the relying party of a user who signed in to gatehouse through
// an upstream OpenID provider: the code redeemed with the ID token checked (signature,
// iss, aud, nonce, PKCE, RFC 9207 iss), the session's `sid` taken from it, the
// userinfo response checked against the ID token (openid-client refuses another
// `sub`; every profile and email claim must be equal), then the same after a refresh:
// the refreshed ID token names the same user and session. Prints `sid=...` for the
// Rust side, which checks the back-channel logout token names that session.
// Driven by tests/it/sessions.rs.
//
// Env: ISSUER, CLIENT_ID, CLIENT_SECRET, CALLBACK_URL (the redirect gatehouse made to
// the client, with its code), CODE_VERIFIER, STATE, NONCE.
import * as client from 'openid-client';
import { isDeepStrictEqual } from 'node:util';

const { ISSUER, CLIENT_ID, CLIENT_SECRET, CALLBACK_URL, CODE_VERIFIER, STATE, NONCE } =
  process.env;
const CLAIMS = ['sub', 'preferred_username', 'name', 'email', 'email_verified', 'groups'];

function fail(message) {
  console.log(`FAILED: ${message}`);
  process.exit(1);
}

/** The userinfo response for `accessToken`, checked against the ID token `id`. */
async function userinfoAgrees(config, accessToken, id, when) {
  const info = await client.fetchUserInfo(config, accessToken, id.sub);
  for (const claim of CLAIMS) {
    if (id[claim] === undefined) fail(`${when}: the ID token lacks ${claim}`);
    if (!isDeepStrictEqual(info[claim], id[claim])) {
      fail(`${when}: userinfo ${claim}=${JSON.stringify(info[claim])}, ID token ${JSON.stringify(id[claim])}`);
    }
  }
  console.log(`${when}: userinfo agrees with the ID token on ${CLAIMS.join(',')}`);
}

const config = await client.discovery(
  new URL(ISSUER),
  CLIENT_ID,
  undefined,
  client.ClientSecretBasic(CLIENT_SECRET),
  { execute: [client.allowInsecureRequests] },
);
const metadata = config.serverMetadata();
console.log(
  `discovery: backchannel_logout_session_supported=${metadata.backchannel_logout_session_supported}`,
);

const tokens = await client.authorizationCodeGrant(config, new URL(CALLBACK_URL), {
  pkceCodeVerifier: CODE_VERIFIER,
  expectedState: STATE,
  expectedNonce: NONCE,
  idTokenExpected: true,
});
const id = tokens.claims();
if (typeof id.sid !== 'string' || id.sid.length < 16) fail(`no sid in the ID token: ${id.sid}`);
if (typeof id.auth_time !== 'number') fail('no auth_time in the ID token');
console.log(`sid=${id.sid}`);
await userinfoAgrees(config, tokens.access_token, id, 'code');

const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
const again = refreshed.claims();
if (!again) fail('no ID token at the refresh');
for (const claim of ['sub', 'sid', 'auth_time']) {
  if (again[claim] !== id[claim]) fail(`refresh: ${claim} ${again[claim]} was ${id[claim]}`);
}
console.log('refresh: same sub, sid and auth_time');
await userinfoAgrees(config, refreshed.access_token, again, 'refresh');
for (const claim of CLAIMS) {
  if (!isDeepStrictEqual(again[claim], id[claim])) fail(`refresh changed ${claim}`);
}
console.log('FEDERATED IDENTITY OK');
