// A real OpenID Connect provider (oidc-provider, the certified Node.js implementation) for
// sudohub's login tests: one confidential client, the users the test gives, a `groups`
// claim, PKCE required. The test switches it into misbehaving on purpose through
// POST /_test/mode, to prove the hub refuses each bad ID token (and changes a user's
// claims through POST /_test/claims):
//   normal       tokens as issued
//   foreign-key  the ID token signed by another key (same `kid`)
//   expired      the ID token expired ten minutes ago
//   wrong-aud    the ID token issued to another client
//   groups-in-id-token-only  user info without the groups claim (as Entra ID and
//                many Keycloak setups: groups only in the ID token)
//
// Environment: PORT, ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, USERS (JSON list of
// {"sub": …, "claims": {…}}); the login name on the provider's form is the `sub`.
import http from 'node:http';
import Provider from 'oidc-provider';
import { generateKeyPair, exportJWK, decodeJwt, SignJWT } from 'jose';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const users = JSON.parse(env('USERS'));

async function signingKey() {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return privateKey;
}
const realKey = await signingKey();
const foreignKey = await signingKey();
const jwk = { ...(await exportJWK(realKey)), kid: 'k1', use: 'sig', alg: 'RS256' };

let mode = 'normal';

const provider = new Provider(env('ISSUER'), {
  clients: [{
    client_id: env('CLIENT_ID'),
    client_secret: env('CLIENT_SECRET'),
    redirect_uris: [env('REDIRECT_URI')],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified', 'hd'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, sub) {
    const u = users.find((x) => x.sub === sub);
    if (!u) return undefined;
    return { accountId: sub, async claims() { return { sub, ...u.claims }; } };
  },
  // No consent page: the test's client is first-party.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile groups');
    await grant.save();
    return grant;
  },
  cookies: { keys: ['sudohub-test-only-cookie-key'] },
  ttl: { AuthorizationCode: 120, AccessToken: 600, IdToken: 600, Session: 600, Interaction: 600, Grant: 600 },
});

provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/me' && mode === 'groups-in-id-token-only' && ctx.body) {
    delete ctx.body.groups;
    return;
  }
  if (ctx.path !== '/token' || !['foreign-key', 'expired', 'wrong-aud'].includes(mode) || !ctx.body || !ctx.body.id_token) return;
  const claims = decodeJwt(ctx.body.id_token);
  const now = Math.floor(Date.now() / 1000);
  let key = realKey;
  if (mode === 'foreign-key') key = foreignKey;
  if (mode === 'expired') { claims.iat = now - 1200; claims.exp = now - 600; }
  if (mode === 'wrong-aud') claims.aud = 'someone-else';
  ctx.body.id_token = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' })
    .sign(key);
});

const handler = provider.callback();
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/_test/claims') {
    // {"sub": …, "claims": {…}}: what the provider says about a user from now on.
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const { sub, claims } = JSON.parse(body);
      const u = users.find((x) => x.sub === sub);
      if (u) u.claims = claims;
      res.writeHead(u ? 204 : 404).end();
    });
    return;
  }
  if (req.method === 'POST' && req.url === '/_test/mode') {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      mode = body.trim();
      res.writeHead(204).end();
    });
    return;
  }
  handler(req, res);
});
server.listen(Number(env('PORT')), '127.0.0.1', () => {
  console.log(`oidc-provider listening, issuer ${env('ISSUER')}`);
});
