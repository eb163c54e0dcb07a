// panva/oidc-provider configured as the other side of `writ bench --compare`:
// the same CIBA full cycle and RFC 7662 introspection writ serves, in memory,
// on loopback. It is not writ's code and shares nothing with it.
//
//   PORT=4778 CLIENTS=/tmp/clients.json node bench-provider.mjs
//
// CLIENTS names a JSON file the bench writes with the keys it generated:
//   {"alg": "ES256",
//    "agents": [{"client_id": "load-00000", "jwks": {"keys": [...]}}, ...],
//    "resource": {"client_id": "https://load.writ.test", "jwks": {"keys": [...]}}}
// Every agent is a CIBA client (poll mode, private_key_jwt, DPoP-bound access
// tokens); the resource is a client that introspects with private_key_jwt.
// A backchannel request is approved at once by triggerAuthenticationDevice,
// as writ's load policy approves the bench's requests at submission, so the
// first token request after the acknowledgement gets the token.
//
// GET /healthz answers 200 once the provider serves.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const host = '127.0.0.1';
const port = Number(process.env.PORT ?? 4778);
const issuer = `http://${host}:${port}`;
const spec = JSON.parse(readFileSync(process.env.CLIENTS, 'utf8'));
const alg = spec.alg ?? 'ES256';

const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const clients = spec.agents.map((a) => ({
  client_id: a.client_id,
  token_endpoint_auth_method: 'private_key_jwt',
  token_endpoint_auth_signing_alg: alg,
  jwks: a.jwks,
  grant_types: ['urn:openid:params:grant-type:ciba'],
  response_types: [],
  redirect_uris: [],
  backchannel_token_delivery_mode: 'poll',
  dpop_bound_access_tokens: true,
  id_token_signed_response_alg: 'ES256',
}));
clients.push({
  client_id: spec.resource.client_id,
  token_endpoint_auth_method: 'private_key_jwt',
  token_endpoint_auth_signing_alg: alg,
  jwks: spec.resource.jwks,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  id_token_signed_response_alg: 'ES256',
});

const configuration = {
  clients,
  jwks: { keys: [{ ...signingKey, kid: 'bench-es256', alg: 'ES256', use: 'sig' }] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid'],
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    dPoP: { enabled: true },
    ciba: {
      enabled: true,
      deliveryModes: ['poll'],
      // login_hint names the account, as writ's names the approver queue.
      processLoginHint: async (_ctx, loginHint) => loginHint,
      processLoginHintToken: async () => undefined,
      validateBindingMessage: async () => {},
      validateRequestContext: async () => {},
      verifyUserCode: async () => {},
      // Approve at once: the grant, then the request's result, before the
      // acknowledgement is sent.
      triggerAuthenticationDevice: async (_ctx, request, account, client) => {
        const grant = new provider.Grant({ accountId: account.accountId, clientId: client.clientId });
        grant.addOIDCScope(request.scope);
        await grant.save();
        await provider.backchannelResult(request, grant);
      },
    },
  },
  ttl: {
    AccessToken: 3600,
    BackchannelAuthenticationRequest: 600,
    ClientCredentials: 3600,
    Grant: 3600,
    IdToken: 3600,
  },
};

const provider = new Provider(issuer, configuration);
const handler = provider.callback();
const server = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.statusCode = 200;
    res.end('ok\n');
    return;
  }
  handler(req, res);
});
server.keepAliveTimeout = 120000;

server.listen(port, host, () => {
  console.log(`oidc-provider (bench) listening on ${issuer}, ${clients.length} clients`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
