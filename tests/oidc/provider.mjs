// A real OpenID provider (panva/oidc-provider) for the sign-in tests, on a loopback port.
//
//   node provider.mjs <port> <resource>
//
// It issues JWT access tokens (RS256, typ at+jwt) whose audience is <resource> (RFC 8707) with the scope
// suno:use, and opaque ones for <resource>/opaque (for introspection). Clients: `service` and `no-scope`
// (client credentials, secret "<client_id>-secret"; their tokens' sub is the client id, as IdPs give a
// service account a subject), `introspector` (the resource server's own client, for introspection), and
// any client that registers itself (dynamic registration, as Claude Code does). The development login
// page takes any login name as the person's sub (alice, bob); consent is granted without asking.
// Prints "listening on <issuer>" once it listens.
import { generateKeyPairSync } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const [port, resource] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const opaque = `${resource}/opaque`;
const SCOPE = 'suno:use';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signing = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rsa-1', use: 'sig', alg: 'RS256' };

const secretClient = (clientId, grants) => ({
  client_id: clientId,
  client_secret: `${clientId}-secret`,
  grant_types: grants,
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
});

const provider = new Provider(issuer, {
  jwks: { keys: [signing] },
  clients: [
    secretClient('service', ['client_credentials']),
    secretClient('no-scope', ['client_credentials']),
    secretClient('introspector', ['client_credentials']),
  ],
  scopes: ['openid', 'offline_access', SCOPE],
  claims: { openid: ['sub'], profile: ['name'] },
  findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, name: `${id} (test)` }) }),
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator, client) => {
        if (indicator !== resource && indicator !== opaque) throw new errors.InvalidTarget();
        // `no-scope` stands for a client the IdP never granted the scope.
        const scope = client.clientId === 'no-scope' ? '' : SCOPE;
        if (indicator === opaque) return { scope, audience: resource, accessTokenFormat: 'opaque', accessTokenTTL: 600 };
        return { scope, audience: resource, accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  extraTokenClaims: async (_ctx, token) => {
    if (token.kind === 'ClientCredentials') return { sub: token.clientId };
    if (token.accountId) return { name: `${token.accountId} (test)` };
    return undefined;
  },
  loadExistingGrant: async (ctx) => {
    const { client, session } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope('openid offline_access');
    grant.addResourceScope(resource, SCOPE);
    grant.addResourceScope(opaque, SCOPE);
    await grant.save();
    return grant;
  },
  issueRefreshToken: async () => true,
  pkce: { required: () => true },
  ttl: { AccessToken: 600, ClientCredentials: 600, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
});
provider.proxy = false;

provider.listen(Number(port), '127.0.0.1', () => {
  process.stderr.write(`listening on ${issuer}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
