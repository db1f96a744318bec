import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { databaseKinds } from './helpers/db.ts'
import {
  ADMIN_TOKEN,
  assertError,
  EXTERNAL_ISSUER,
  newWallet,
  useIdentityApp,
} from './helpers/identity-app.ts'

// Bearer tokens through the identity routes over HTTP, as the server mounts them, on both
// databases: wallet sessions, the admin token and tokens from an external issuer.

for (const kind of databaseKinds) {
  describe(`identity over HTTP (${kind})`, () => {
    const fx = useIdentityApp(kind)

    describe('sessions', () => {
      it('logout revokes the session', async () => {
        const token = await fx.app.signIn(newWallet())
        assert.deepEqual((await fx.app.call('POST', '/v1/auth/logout', { token })).body, { ok: true })
        assertError(
          await fx.app.call('GET', '/v1/auth/me', { token }),
          401,
          'unauthorized',
          /session revoked/,
        )
      })

      it('refuses an expired session token', async () => {
        const token = await fx.app.signIn(newWallet())
        fx.clock.offsetMs = 3601_000
        try {
          assertError(
            await fx.app.call('GET', '/v1/auth/me', { token }),
            401,
            'unauthorized',
            /session expired/,
          )
        } finally {
          fx.clock.offsetMs = 0
        }
        assert.equal((await fx.app.call('GET', '/v1/auth/me', { token })).status, 200)
      })

      it('refuses a missing, malformed or forged token, saying which', async () => {
        assertError(await fx.app.call('GET', '/v1/auth/me'), 401, 'unauthorized', /missing bearer token/)
        assertError(
          await fx.app.call('GET', '/v1/auth/me', { token: 'garbage' }),
          401,
          'unauthorized',
          /not an API key/,
        )
        const token = await fx.app.signIn(newWallet())
        const [header, payload] = token.split('.')
        const forged = `${header}.${payload}.${'A'.repeat(43)}`
        assertError(
          await fx.app.call('GET', '/v1/auth/me', { token: forged }),
          401,
          'unauthorized',
          /signature/,
        )
      })

      it('takes the access_token query parameter only where a browser cannot send a header', async () => {
        const token = await fx.app.signIn(newWallet())
        const query = `access_token=${encodeURIComponent(token)}`
        // An EventSource asks for text/event-stream; a WebSocket upgrade is on a /ws path.
        const stream = await fx.app.call('GET', `/v1/auth/me?${query}`, {
          headers: { accept: 'text/event-stream' },
        })
        assert.equal(stream.status, 200)
        assert.equal(stream.body.kind, 'session')
        // Anywhere else it is ignored: a token in a URL ends up in logs and history.
        assertError(
          await fx.app.call('GET', `/v1/auth/me?${query}`),
          401,
          'unauthorized',
          /missing bearer token/,
        )
      })
    })

    describe('admin token', () => {
      it('authenticates as admin, which owns no API keys and has no session', async () => {
        const me = await fx.app.call('GET', '/v1/auth/me', { token: ADMIN_TOKEN })
        assert.deepEqual(me.body, { accountId: null, address: null, kind: 'admin' })
        const keys = await fx.app.call('GET', '/v1/api-keys', { token: ADMIN_TOKEN })
        assertError(keys, 403, 'forbidden')
        assertError(
          await fx.app.call('POST', '/v1/auth/logout', { token: ADMIN_TOKEN }),
          400,
          'invalid_input',
        )
        const wrong = await fx.app.call('GET', '/v1/auth/me', { token: `${ADMIN_TOKEN}x` })
        assertError(wrong, 401, 'unauthorized')
      })
    })

    describe('external issuer', () => {
      it('maps a valid token to one account per subject', async () => {
        const token = await fx.jwks.sign({ iss: EXTERNAL_ISSUER, sub: `user-${kind}`, aud: 'berth' })
        const first = await fx.app.call('GET', '/v1/auth/me', { token })
        assert.equal(first.status, 200, JSON.stringify(first.body))
        assert.equal(first.body.kind, 'external_jwt')
        assert.equal(first.body.address, null)
        const again = await fx.jwks.sign({ iss: EXTERNAL_ISSUER, sub: `user-${kind}`, aud: 'berth' })
        assert.equal(
          (await fx.app.call('GET', '/v1/auth/me', { token: again })).body.accountId,
          first.body.accountId,
        )
        const keys = await fx.app.call('POST', '/v1/api-keys', { token, body: { name: 'from-idp' } })
        assert.equal(keys.status, 201)
      })

      it('refuses a token from an issuer it does not trust', async () => {
        const token = await fx.jwks.sign({ iss: 'https://other.example', sub: 'user', aud: 'berth' })
        const reply = await fx.app.call('GET', '/v1/auth/me', { token })
        assertError(reply, 401, 'unauthorized', /issuer "https:\/\/other\.example" is not trusted/)
      })
    })
  })
}
