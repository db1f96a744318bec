import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { sql } from 'drizzle-orm'
import { createSiweMessage } from 'viem/siwe'
import { queryRows } from '../src/db/client.ts'
import { databaseKinds } from './helpers/db.ts'
import { assertError, DOMAIN, newWallet, ORIGIN, useIdentityApp } from './helpers/identity-app.ts'

// Sign-In with Ethereum through the identity routes over HTTP, as the server mounts them, on both
// databases. Sessions and other tokens are in identity-http-tokens.test.ts, API keys in
// identity-http-api-keys.test.ts; the time-dependent SIWE rules are in identity-siwe.test.ts.

for (const kind of databaseKinds) {
  describe(`identity over HTTP (${kind})`, () => {
    const fx = useIdentityApp(kind)

    describe('SIWE sign-in', () => {
      it('signs a wallet in and the token authenticates it', async () => {
        const wallet = newWallet()
        const nonce = await fx.app.call('POST', '/v1/auth/nonce')
        assert.equal(nonce.status, 200)
        assert.match(nonce.body.nonce, /^[a-zA-Z0-9]{8,}$/)
        assert.equal(nonce.body.domain, DOMAIN)

        const reply = await fx.app.call('POST', '/v1/auth/verify', {
          body: await fx.app.signedMessage(wallet),
        })
        assert.equal(reply.status, 200, JSON.stringify(reply.body))
        assert.equal(reply.body.address, wallet.address.toLowerCase())
        assert.ok(new Date(reply.body.expiresAt).getTime() > Date.now() + 3500_000)

        const me = await fx.app.call('GET', '/v1/auth/me', { token: reply.body.token })
        assert.equal(me.status, 200)
        assert.deepEqual(me.body, {
          accountId: reply.body.accountId,
          address: wallet.address.toLowerCase(),
          kind: 'session',
        })
        // Signing in again maps to the same account.
        const again = await fx.app.call('GET', '/v1/auth/me', { token: await fx.app.signIn(wallet) })
        assert.equal(again.body.accountId, reply.body.accountId)
      })

      it('refuses a message for another domain', async () => {
        const body = await fx.app.signedMessage(newWallet(), { domain: 'evil.example' })
        const reply = await fx.app.call('POST', '/v1/auth/verify', { body })
        assertError(reply, 401, 'unauthorized', /domain "evil\.example" is not this server's domain/)
      })

      it('refuses a message whose URI is on another origin', async () => {
        const body = await fx.app.signedMessage(newWallet(), { uri: 'https://evil.example/login' })
        assertError(await fx.app.call('POST', '/v1/auth/verify', { body }), 401, 'unauthorized', /URI/)
      })

      it('refuses a reused nonce', async () => {
        const body = await fx.app.signedMessage(newWallet())
        assert.equal((await fx.app.call('POST', '/v1/auth/verify', { body })).status, 200)
        const reply = await fx.app.call('POST', '/v1/auth/verify', { body })
        assertError(reply, 401, 'unauthorized', /nonce is unknown, expired or already used/)
      })

      it('refuses a nonce it never issued', async () => {
        const wallet = newWallet()
        const message = createSiweMessage({
          domain: DOMAIN,
          address: wallet.address,
          uri: ORIGIN,
          chainId: 1,
          nonce: 'madeUpNonce123',
          version: '1',
        })
        const body = { message, signature: await wallet.signMessage({ message }) }
        assertError(await fx.app.call('POST', '/v1/auth/verify', { body }), 401, 'unauthorized', /nonce/)
      })

      it('refuses an expired message', async () => {
        const body = await fx.app.signedMessage(newWallet(), {
          issuedAt: new Date(Date.now() - 3600_000),
          expirationTime: new Date(Date.now() - 1800_000),
        })
        assertError(await fx.app.call('POST', '/v1/auth/verify', { body }), 401, 'unauthorized', /expired at/)
      })

      it('refuses a message that is not valid yet', async () => {
        const body = await fx.app.signedMessage(newWallet(), { notBefore: new Date(Date.now() + 3600_000) })
        assertError(
          await fx.app.call('POST', '/v1/auth/verify', { body }),
          401,
          'unauthorized',
          /not valid before/,
        )
      })

      it('refuses a message altered after signing', async () => {
        const { message, signature } = await fx.app.signedMessage(newWallet())
        const tampered = message.replace('Sign in to berth', 'Sign in to berth and transfer everything')
        assert.notEqual(tampered, message)
        const reply = await fx.app.call('POST', '/v1/auth/verify', { body: { message: tampered, signature } })
        assertError(reply, 401, 'unauthorized', /signature does not match address/)
      })

      it('refuses a signature from another wallet', async () => {
        const { message } = await fx.app.signedMessage(newWallet())
        const signature = await newWallet().signMessage({ message })
        const reply = await fx.app.call('POST', '/v1/auth/verify', { body: { message, signature } })
        assertError(reply, 401, 'unauthorized', /signed by another wallet/)
      })

      it('names the field of a malformed request', async () => {
        const reply = await fx.app.call('POST', '/v1/auth/verify', {
          body: { message: 'hello', signature: 'nothex', extra: 1 },
        })
        assertError(reply, 400, 'invalid_input', /signature/)
        const notSiwe = await fx.app.call('POST', '/v1/auth/verify', {
          body: { message: 'hello', signature: '0x00' },
        })
        assertError(notSiwe, 400, 'invalid_input', /not an EIP-4361 message/)
      })

      it('turns 50 concurrent uses of one signed message into exactly one session', async () => {
        const wallet = newWallet()
        const body = await fx.app.signedMessage(wallet)
        const replies = await Promise.all(
          Array.from({ length: 50 }, () => fx.app.call('POST', '/v1/auth/verify', { body })),
        )
        const statuses = replies.map((r) => r.status)
        assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses.join(',')}`)
        assert.equal(statuses.filter((s) => s === 401).length, 49)
        for (const reply of replies.filter((r) => r.status === 401)) {
          assert.match(reply.body.error.message, /nonce is unknown, expired or already used/)
        }
        const [row] = await queryRows<{ n: number }>(
          fx.database.db,
          sql`select count(*)::int as n from sessions s join accounts a on a.id = s.account_id
              where a.address = ${wallet.address.toLowerCase()}`,
        )
        assert.equal(row?.n, 1)
      })
    })
  })
}
