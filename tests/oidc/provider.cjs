// A real OpenID provider for the black-box tests: panva's oidc-provider
// (installed by `cargo xtask ci` into target/oidc, found through NODE_PATH),
// issuing RFC 9068 JWT access tokens by the client credentials grant.
//
//   node provider.cjs PORT        (or PORT in the environment)
//
// Environment:
//   OIDC_JWKS_FILE  private JWKS to sign with; written with fresh keys (one
//                   RS256, one ES256) when missing. Required.
//   OIDC_ALG        RS256 (default) or ES256: how access tokens are signed.
//   OIDC_AUDIENCE   the `aud` of tokens for the default resource (default `notes`).
//
// Clients: `alice` / `alice-secret` and `bob` / `bob-secret`, both
// confidential, client_credentials only, scopes notes:read notes:write pets:read.
//
// Resource indicators (RFC 8707) must be absolute URIs in oidc-provider, so
// the audience `notes` is asked for as `urn:petsage:notes`: any
// `urn:petsage:NAME` gives a token whose `aud` is NAME, an absolute URL gives
// a token whose `aud` is that URL. Without `resource`, the default resource
// is OIDC_AUDIENCE (as a URN when it is not a URL).
//
// Test routes (not part of OpenID):
//   GET /test/jwks-fetches     how many GETs /jwks has answered, as plain text
//   GET /test/id-token?client_id=alice
//                              an ID token for that client (aud = client id,
//                              typ JWT), signed with the provider's key: a
//                              token PetSage must refuse as an access token
//
// Prints `listening on http://127.0.0.1:PORT` on stdout once it accepts connections.

'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const { pathToFileURL } = require('node:url');

const port = Number(process.argv[2] || process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node provider.cjs PORT (or PORT=...)');
  process.exit(2);
}
const jwksFile = process.env.OIDC_JWKS_FILE;
if (!jwksFile) {
  console.error('OIDC_JWKS_FILE must name the signing key set (created when missing)');
  process.exit(2);
}
const alg = process.env.OIDC_ALG || 'RS256';
if (alg !== 'RS256' && alg !== 'ES256') {
  console.error(`OIDC_ALG must be RS256 or ES256, not ${alg}`);
  process.exit(2);
}
const audience = process.env.OIDC_AUDIENCE || 'notes';
const issuer = `http://127.0.0.1:${port}`;
const SCOPES = 'notes:read notes:write pets:read';

/** The resource indicator whose tokens carry `aud`. */
function resourceFor(aud) {
  return URL.canParse(aud) && aud.includes('/') ? aud : `urn:petsage:${aud}`;
}

/** The `aud` of tokens for a resource indicator (inverse of resourceFor). */
function audienceOf(resource) {
  return resource.startsWith('urn:petsage:') ? resource.slice('urn:petsage:'.length) : resource;
}

/** The key set in `file`, written there with fresh keys first if missing. */
function loadOrCreateKeys(file) {
  if (fs.existsSync(file)) {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  }
  const stamp = `${Date.now().toString(36)}-${crypto.randomBytes(4).toString('hex')}`;
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const keys = {
    keys: [
      { ...rsa.export({ format: 'jwk' }), kid: `rs256-${stamp}`, alg: 'RS256', use: 'sig' },
      { ...ec.export({ format: 'jwk' }), kid: `es256-${stamp}`, alg: 'ES256', use: 'sig' },
    ],
  };
  fs.writeFileSync(file, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
  return keys;
}

async function main() {
  // oidc-provider is ESM only; resolve it through NODE_PATH as CommonJS would.
  const { default: Provider } = await import(pathToFileURL(require.resolve('oidc-provider')).href);
  const jose = await import(pathToFileURL(require.resolve('jose')).href);

  const jwks = loadOrCreateKeys(jwksFile);
  const client = (id) => ({
    client_id: id,
    client_secret: `${id}-secret`,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: SCOPES,
  });

  const provider = new Provider(issuer, {
    clients: [client('alice'), client('bob')],
    jwks,
    scopes: SCOPES.split(' '),
    cookies: { keys: ['petsage-test-cookie-key'] },
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resourceFor(audience),
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => ({
          scope: SCOPES,
          audience: audienceOf(resource),
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        }),
      },
    },
  });

  let jwksFetches = 0;
  provider.use(async (ctx, next) => {
    if (ctx.path === '/test/jwks-fetches' && ctx.method === 'GET') {
      ctx.type = 'text/plain';
      ctx.body = String(jwksFetches);
      return;
    }
    if (ctx.path === '/test/id-token' && ctx.method === 'GET') {
      const clientId = ctx.query.client_id || 'alice';
      const jwk = jwks.keys.find((k) => k.alg === 'RS256');
      const key = await jose.importJWK(jwk, 'RS256');
      ctx.type = 'text/plain';
      ctx.body = await new jose.SignJWT({ azp: clientId })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: jwk.kid })
        .setIssuer(issuer)
        .setSubject(clientId)
        .setAudience(clientId)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(key);
      return;
    }
    if (ctx.path === '/jwks' && ctx.method === 'GET') {
      jwksFetches += 1;
      console.log(`jwks fetch ${jwksFetches}`);
    }
    await next();
  });

  provider.listen(port, '127.0.0.1', () => {
    console.log(`listening on ${issuer}`);
  });
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
