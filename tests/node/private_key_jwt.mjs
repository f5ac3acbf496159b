// openid-client (v6) authenticating a service to gatehouse with private_key_jwt:
// discovery, client credentials twice (a fresh assertion each time), introspection
// and revocation with the same method. Driven by tests/it/private_key_jwt.rs.
//
// Env: ISSUER, CLIENT_ID, KEY_FILE (PKCS#8 PEM), ALG (ES256, EdDSA, ...), KID.
import * as client from 'openid-client';
import * as jose from 'jose';
import { readFileSync } from 'node:fs';

const { ISSUER, CLIENT_ID, KEY_FILE, ALG, KID } = process.env;
const key = await jose.importPKCS8(readFileSync(KEY_FILE, 'utf8'), ALG);
const config = await client.discovery(
  new URL(ISSUER),
  CLIENT_ID,
  undefined,
  client.PrivateKeyJwt({ key, kid: KID }),
  { execute: [client.allowInsecureRequests] },
);
const methods = config.serverMetadata().token_endpoint_auth_methods_supported ?? [];
console.log(`discovery: private_key_jwt=${methods.includes('private_key_jwt')}`);

const tokens = await client.clientCredentialsGrant(config);
console.log(`token: type=${tokens.token_type.toLowerCase()}`);
const again = await client.clientCredentialsGrant(config);
console.log(`second token: ${again.access_token !== tokens.access_token ? 'new' : 'same'}`);

const info = await client.tokenIntrospection(config, tokens.access_token);
console.log(`introspection: active=${info.active} client_id=${info.client_id}`);
await client.tokenRevocation(config, tokens.access_token);
const after = await client.tokenIntrospection(config, tokens.access_token);
console.log(`after revocation: active=${after.active}`);
console.log('PRIVATE KEY JWT OK');
