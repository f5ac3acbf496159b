// An MCP server and an MCP client, both from the official TypeScript SDK
// (@modelcontextprotocol/sdk), against a real gatehouse started by tests/it/mcp.rs.
//
// The server publishes its protected resource metadata (RFC 9728) naming gatehouse, and
// its bearer-auth verifier accepts only gatehouse's JWTs whose `aud` is its own URL.
// The client is an OAuthClientProvider for a pre-registered public client: the SDK
// discovers gatehouse from the server's 401, logs in with PKCE and `resource` (this
// script plays the user at the login and consent pages), and calls a tool. Finally a
// token gatehouse issued for another resource is shown to be refused by the server.
//
// Environment: ISSUER, MCP_PORT, USERNAME, PASSWORD, CLIENT_ID, REDIRECT_URI,
// SERVICE_ID, SERVICE_SECRET, OTHER_RESOURCE. Exits non-zero on any failure.

import express from 'express';
import * as jose from 'jose';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import {
  mcpAuthMetadataRouter,
  getOAuthProtectedResourceMetadataUrl,
} from '@modelcontextprotocol/sdk/server/auth/router.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const ISSUER = env('ISSUER');
const MCP_URL = `http://127.0.0.1:${env('MCP_PORT')}/mcp`;

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// ---- The MCP server: a resource server that trusts gatehouse --------------------------

async function startMcpServer() {
  const metadata = await (await fetch(`${ISSUER}/.well-known/openid-configuration`)).json();
  const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
  const verifier = {
    async verifyAccessToken(token) {
      try {
        const { payload } = await jose.jwtVerify(token, jwks, {
          issuer: ISSUER,
          audience: MCP_URL, // only tokens issued for this server
          typ: 'at+jwt',
        });
        return {
          token,
          clientId: payload.client_id,
          scopes: (payload.scope ?? '').split(' ').filter(Boolean),
          expiresAt: payload.exp,
          resource: new URL(MCP_URL),
        };
      } catch (e) {
        throw new InvalidTokenError(`token refused: ${e.code ?? e.message}`);
      }
    },
  };
  const app = express();
  app.use(express.json());
  app.use(
    mcpAuthMetadataRouter({
      oauthMetadata: metadata,
      resourceServerUrl: new URL(MCP_URL),
      scopesSupported: ['mcp:tools'],
      resourceName: 'Tools',
    }),
  );
  const auth = requireBearerAuth({
    verifier,
    requiredScopes: ['mcp:tools'],
    resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(new URL(MCP_URL)),
    expectedResource: new URL(MCP_URL),
  });
  app.post('/mcp', auth, async (req, res) => {
    // Stateless: one server and transport per request.
    const server = new McpServer({ name: 'tools', version: '1.0.0' });
    server.registerTool(
      'echo',
      { description: 'Echoes its text', inputSchema: { text: z.string() } },
      async ({ text }) => ({ content: [{ type: 'text', text: `echo: ${text} (for ${req.auth.clientId})` }] }),
    );
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  return await new Promise((resolve, reject) => {
    const listener = app.listen(Number(env('MCP_PORT')), '127.0.0.1', () => resolve(listener));
    listener.on('error', reject);
  });
}

// ---- The user at gatehouse's pages ------------------------------------------------------

const unescape = (s) =>
  s
    .replaceAll('&#x2f;', '/')
    .replaceAll('&#x27;', "'")
    .replaceAll('&quot;', '"')
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');

function hidden(html, name) {
  const match = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  check(match, `no hidden ${name} on the page: ${html.slice(0, 400)}`);
  return unescape(match[1]);
}

/** A browser with a cookie jar that never follows redirects. */
class Browser {
  cookies = new Map();
  async go(url, form) {
    const headers = { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(url, { method: form ? 'POST' : 'GET', headers, body, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const at = pair.indexOf('=');
      this.cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return { status: res.status, location: res.headers.get('location'), html: await res.text() };
  }
}

/** Signs in and allows the consent; returns the code from the redirect. */
async function userLogsIn(authorizationUrl) {
  const browser = new Browser();
  const login = await browser.go(authorizationUrl.href);
  check(login.status === 200, `the login page: ${login.status} ${login.location}`);
  const form = (html, extra) => ({ csrf_token: hidden(html, 'csrf_token'), request: hidden(html, 'request'), ...extra });
  const consent = await browser.go(
    `${ISSUER}/login`,
    form(login.html, { username: env('USERNAME'), password: env('PASSWORD') }),
  );
  check(consent.status === 200, `the consent page: ${consent.status}`);
  check(consent.html.includes('Tools'), 'the consent page names the resource');
  const back = await browser.go(`${ISSUER}/consent`, form(consent.html, { decision: 'allow' }));
  check(back.status === 303 && back.location, `the redirect back: ${back.status}`);
  const redirect = new URL(back.location);
  check(redirect.searchParams.get('iss') === ISSUER, 'iss in the response (RFC 9207)');
  const error = redirect.searchParams.get('error');
  check(!error, `gatehouse refused: ${error} ${redirect.searchParams.get('error_description')}`);
  return redirect.searchParams.get('code');
}

// ---- The MCP client -----------------------------------------------------------------

class Provider {
  authorizationUrl;
  saved;
  verifier;
  get redirectUrl() {
    return env('REDIRECT_URI');
  }
  get clientMetadata() {
    return {
      client_name: 'MCP e2e',
      redirect_uris: [env('REDIRECT_URI')],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return { client_id: env('CLIENT_ID') }; // pre-registered in gatehouse's config
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

async function clientCallsTool() {
  const provider = new Provider();
  const first = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  try {
    await new Client({ name: 'e2e', version: '1.0.0' }).connect(first);
    throw new Error('connected without a token');
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  const url = provider.authorizationUrl;
  check(url, 'the SDK asked for an authorization');
  check(url.href.startsWith(`${ISSUER}/authorize`), `authorization at gatehouse: ${url}`);
  check(url.searchParams.get('resource') === MCP_URL, `resource in the authorization request: ${url}`);
  check(url.searchParams.get('code_challenge_method') === 'S256', 'PKCE S256');
  console.log(`authorization request: resource=${url.searchParams.get('resource')} scope=${url.searchParams.get('scope')}`);
  const code = await userLogsIn(url);
  await first.finishAuth(code);
  const claims = jose.decodeJwt(provider.saved.access_token);
  check(claims.aud === MCP_URL, `the token's aud: ${JSON.stringify(claims.aud)}`);
  console.log(`token: aud=${claims.aud} scope=${claims.scope}`);

  const client = new Client({ name: 'e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider }));
  const result = await client.callTool({ name: 'echo', arguments: { text: 'hello' } });
  const text = result.content?.[0]?.text;
  check(text === `echo: hello (for ${env('CLIENT_ID')})`, `the tool's answer: ${JSON.stringify(result)}`);
  console.log(`tool result: ${text}`);
  await client.close();
}

/** A token gatehouse issued for another resource is refused by the MCP server. */
async function otherResourceRefused() {
  const basic = Buffer.from(`${env('SERVICE_ID')}:${env('SERVICE_SECRET')}`).toString('base64');
  const res = await fetch(`${ISSUER}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: env('OTHER_RESOURCE') }),
  });
  const issued = await res.json();
  check(res.status === 200, `a token for the other resource: ${JSON.stringify(issued)}`);
  check(jose.decodeJwt(issued.access_token).aud === env('OTHER_RESOURCE'), 'issued for the other resource');
  const call = await fetch(MCP_URL, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${issued.access_token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  const challenge = call.headers.get('www-authenticate') ?? '';
  check(call.status === 401, `the MCP server took another resource's token: ${call.status}`);
  check(challenge.includes('invalid_token'), `the challenge: ${challenge}`);
  console.log(`other resource refused: ${call.status} ${challenge}`);
}

const listener = await startMcpServer();
let failed = false;
try {
  await clientCallsTool();
  await otherResourceRefused();
  console.log('MCP E2E OK');
} catch (e) {
  failed = true;
  console.error(`MCP E2E FAILED: ${e.stack ?? e}`);
} finally {
  listener.close();
}
process.exit(failed ? 1 : 0);
