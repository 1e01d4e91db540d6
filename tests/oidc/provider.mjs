// An OpenID Connect provider for objd's STS tests: oidc-provider, a
// certified implementation, on 127.0.0.1:PORT. Users log in through its
// own interaction pages (any login name; every password works), and get
// ID tokens for the authorization code flow with PKCE. The `policy` claim
// (scope `strata`) is the user's policies: POLICIES below, none for
// anyone else. Signing keys (RSA, and P-256 for the `short-lived`
// client's ES256 tokens) are generated at each start, so a restart is a
// key rotation. Stops when its standard input closes.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const jwk = (type, options) => ({
  ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
  kid: randomUUID(),
  use: 'sig',
});
const keys = [jwk('rsa', { modulusLength: 2048 }), jwk('ec', { namedCurve: 'P-256' })];

const port = Number(process.argv[2]);
const POLICIES = { alice: 'readers', bob: ['readers', 'writers'] };
const redirect = 'http://127.0.0.1/callback';
const publicClient = (id, alg = 'RS256') => ({
  client_id: id,
  id_token_signed_response_alg: alg,
  token_endpoint_auth_method: 'none',
  redirect_uris: [redirect],
  grant_types: ['authorization_code'],
  response_types: ['code'],
});

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [publicClient('strata'), publicClient('other-app'), publicClient('short-lived', 'ES256')],
  jwks: { keys },
  scopes: ['openid', 'strata'],
  claims: { openid: ['sub'], strata: ['policy', 'preferred_username'] },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  ttl: {
    IdToken: (ctx, token, client) => (client.clientId === 'short-lived' ? 2 : 600),
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const claims = { sub: id, preferred_username: id };
        if (POLICIES[id]) claims.policy = POLICIES[id];
        return claims;
      },
    };
  },
});
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on http://127.0.0.1:${port}`);
});
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.resume();
