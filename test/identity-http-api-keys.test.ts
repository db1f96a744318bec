import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { sql } from 'drizzle-orm'
import { queryRows } from '../src/db/client.ts'
import { databaseKinds } from './helpers/db.ts'
import { assertError, newWallet, useIdentityApp } from './helpers/identity-app.ts'

// API keys through the identity routes over HTTP, as the server mounts them, on both databases,
// and the OpenAPI document of all the identity routes.

for (const kind of databaseKinds) {
  describe(`identity over HTTP (${kind})`, () => {
    const fx = useIdentityApp(kind)

    describe('API keys', () => {
      it('creates, lists, authenticates with and deletes a key', async () => {
        const token = await fx.app.signIn(newWallet())
        const created = await fx.app.call('POST', '/v1/api-keys', { token, body: { name: 'ci' } })
        assert.equal(created.status, 201, JSON.stringify(created.body))
        const { id, key, prefix } = created.body
        assert.match(key, /^berth_[A-Za-z0-9_-]{43}$/)
        assert.equal(prefix, key.slice(0, 12))

        const listed = await fx.app.call('GET', '/v1/api-keys', { token })
        assert.equal(listed.status, 200)
        assert.deepEqual(
          listed.body.items.map((k: { id: string; name: string; prefix: string }) => [
            k.id,
            k.name,
            k.prefix,
          ]),
          [[id, 'ci', prefix]],
        )
        assert.ok(!JSON.stringify(listed.body).includes(key))

        const me = await fx.app.call('GET', '/v1/auth/me', { token: key })
        assert.equal(me.status, 200)
        assert.equal(me.body.kind, 'api_key')
        // A key cannot make keys, nor revoke them: only a signed-in person can.
        assertError(
          await fx.app.call('POST', '/v1/api-keys', { token: key, body: { name: 'spawned' } }),
          403,
          'forbidden',
          /with a wallet session, not with an API key/,
        )
        assertError(await fx.app.call('DELETE', `/v1/api-keys/${id}`, { token: key }), 403, 'forbidden')
        assert.equal((await fx.app.call('GET', '/v1/api-keys', { token: key })).body.items.length, 1)
        assert.equal(
          (await fx.app.call('GET', '/v1/api-keys', { token })).body.items[0].lastUsedAt !== null,
          true,
        )

        const stored = await queryRows<Record<string, unknown>>(fx.database.db, sql`select * from api_keys`)
        assert.ok(stored.length > 0)
        assert.ok(!JSON.stringify(stored).includes(key.slice(12)), 'the plain key is not stored')

        assert.deepEqual((await fx.app.call('DELETE', `/v1/api-keys/${id}`, { token })).body, { ok: true })
        assertError(
          await fx.app.call('GET', '/v1/auth/me', { token: key }),
          401,
          'unauthorized',
          /API key revoked/,
        )
        assert.deepEqual((await fx.app.call('GET', '/v1/api-keys', { token })).body, { items: [] })
        assertError(await fx.app.call('DELETE', `/v1/api-keys/${id}`, { token }), 404, 'not_found')
      })

      it("answers 404 for another account's key", async () => {
        const owner = await fx.app.signIn(newWallet())
        const other = await fx.app.signIn(newWallet())
        const { body } = await fx.app.call('POST', '/v1/api-keys', { token: owner, body: { name: 'mine' } })
        assertError(
          await fx.app.call('DELETE', `/v1/api-keys/${body.id}`, { token: other }),
          404,
          'not_found',
        )
        assert.equal((await fx.app.call('GET', '/v1/auth/me', { token: body.key })).status, 200)
      })

      it('validates names and ids, and refuses unknown keys', async () => {
        const token = await fx.app.signIn(newWallet())
        const long = await fx.app.call('POST', '/v1/api-keys', { token, body: { name: 'x'.repeat(65) } })
        assertError(long, 400, 'invalid_input', /name/)
        const extra = await fx.app.call('POST', '/v1/api-keys', { token, body: { name: 'a', admin: true } })
        assertError(extra, 400, 'invalid_input')
        assertError(
          await fx.app.call('DELETE', '/v1/api-keys/not-a-uuid', { token }),
          400,
          'invalid_input',
          /id/,
        )
        const unknown = await fx.app.call('GET', '/v1/auth/me', { token: `berth_${'x'.repeat(43)}` })
        assertError(unknown, 401, 'unauthorized', /unknown API key/)
      })
    })

    it('documents every route in the OpenAPI document', () => {
      assert.deepEqual(fx.app.openApiPaths().sort(), [
        '/v1/api-keys',
        '/v1/api-keys/{id}',
        '/v1/auth/logout',
        '/v1/auth/me',
        '/v1/auth/nonce',
        '/v1/auth/verify',
      ])
    })
  })
}
