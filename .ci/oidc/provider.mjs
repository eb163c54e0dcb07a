// An independent OpenID Provider (panva/oidc-provider, certified by the
// OpenID Foundation) on loopback, for writ's operator sign-in integration
// test. It is not writ's code and shares nothing with it: the test reaches it
// through discovery, like any real provider.
//
//   PORT=4777 node provider.mjs
//
// Client "writ-console": public, native (any loopback port), PKCE, device
// flow, refresh tokens. Accounts: priya (in writ-approvers) and sam (not).
// Its sign-in pages are plain forms a headless client can post:
//   /interaction/:uid        GET shows the login or consent form
//   /interaction/:uid/login  POST login, password
//   /interaction/:uid/confirm POST (consent)
//   /interaction/:uid/abort  POST (deny)
// and the device pages of oidc-provider itself at /device.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const host = '127.0.0.1';
const port = Number(process.env.PORT ?? 4777);
const issuer = `http://${host}:${port}`;

const accounts = new Map([
  ['priya', {
    password: 'correct horse battery staple',
    claims: {
      sub: 'priya', name: 'Priya Patel', email: 'priya@ci.writ.test', email_verified: true,
      groups: ['writ-approvers', 'platform'],
    },
  }],
  ['sam', {
    password: 'correct horse battery staple',
    claims: {
      sub: 'sam', name: 'Sam Reviewer', email: 'sam@ci.writ.test', email_verified: true,
      groups: ['security'],
    },
  }],
]);

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`;

const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const configuration = {
  clients: [{
    client_id: 'writ-console',
    client_name: 'writ console (CI)',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    id_token_signed_response_alg: 'ES256',
    require_auth_time: true,
  }],
  jwks: { keys: [{ ...signingKey, kid: 'ci-es256', alg: 'ES256', use: 'sig' }] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // Claims of the requested scopes go in the ID token, where writ reads them.
  conformIdTokenClaims: false,
  findAccount: async (_ctx, sub) => {
    const account = accounts.get(sub);
    return account && { accountId: sub, claims: async () => account.claims };
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    deviceFlow: {
      enabled: true,
      async userCodeInputSource(ctx, form, _out, err) {
        ctx.body = page('Enter the code', `${err ? `<p>${esc(err.message)}</p>` : ''}${form}<button type="submit" form="op.deviceInputForm">Continue</button>`);
      },
      async userCodeConfirmSource(ctx, form, client, _info, userCode) {
        ctx.body = page('Confirm the device', `<p>${esc(client.clientName)} shows <code>${esc(userCode)}</code>.</p>${form}
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`);
      },
      async successSource(ctx) {
        ctx.body = page('Signed in', '<p>Return to your terminal.</p>');
      },
    },
  },
  ttl: {
    DeviceCode: 600,
    AccessToken: 3600,
    IdToken: 3600,
    RefreshToken: 86400,
    Grant: 86400,
    Session: 3600,
    Interaction: 600,
    AuthorizationCode: 60,
  },
};

const provider = new Provider(issuer, configuration);

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 1 << 16) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

// interaction serves the login and consent steps.
async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt, params, session, grantId } = details;

  if (req.method === 'GET') {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('cache-control', 'no-store');
    if (prompt.name === 'login') {
      res.end(page('Sign in', `<form method="post" action="/interaction/${esc(uid)}/login">
<input name="login" autocomplete="username"><input name="password" type="password">
<button>Sign in</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button>Cancel</button></form>`));
    } else {
      res.end(page('Authorize writ', `<p>${esc(params.client_id)} asks for ${esc(params.scope)}</p>
<form method="post" action="/interaction/${esc(uid)}/confirm"><button>Allow</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button>Deny</button></form>`));
    }
    return;
  }

  const form = await readForm(req);
  if (action === 'abort') {
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user denied the sign-in' },
      { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'login' && prompt.name === 'login') {
    const account = accounts.get(form.get('login'));
    if (!account || account.password !== form.get('password')) {
      res.statusCode = 401;
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(page('Sign in', '<p>Wrong login or password.</p>'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: form.get('login') } },
      { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'confirm' && prompt.name === 'consent') {
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: true });
    return;
  }
  res.statusCode = 400;
  res.end(`unexpected ${action} at the ${prompt.name} step`);
}

const handler = provider.callback();
const server = createServer((req, res) => {
  const m = /^\/interaction\/([^/?]+)(?:\/(login|confirm|abort))?(?:\?.*)?$/.exec(req.url);
  if (!m) {
    handler(req, res);
    return;
  }
  interaction(req, res, m[1], m[2]).catch((err) => {
    res.statusCode = 400;
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.end(`interaction failed: ${err.message}`);
  });
});

server.listen(port, host, () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
