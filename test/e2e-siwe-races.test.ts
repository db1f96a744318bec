import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { PrivateKeyAccount } from 'viem/accounts'
import { createSiweMessage } from 'viem/siwe'
import { api, type RunningBerth, startBerthOnPostgres } from './helpers/server.ts'
import { type Body, SIGN_IN_UNLIMITED, wallet } from './helpers/siwe-berth.ts'

// Sign-In with Ethereum under concurrency, against the real `berth serve` on PostgreSQL.

describe('SIWE races on a PostgreSQL server (e2e)', () => {
  // PGlite runs one statement at a time; a server runs them truly concurrently, which is where
  // the single-use nonce and find-or-create of the account have to hold.
  let server: RunningBerth

  before(async () => {
    server = await startBerthOnPostgres({
      env: {
        BERTH_LOG_LEVEL: 'warn',
        ...SIGN_IN_UNLIMITED,
      },
    })
  })

  after(async () => {
    await server?.stop()
  })

  async function signedOnServer(account: PrivateKeyAccount) {
    const issued = await api(server.url).post<Body>('/v1/auth/nonce')
    assert.equal(issued.status, 200)
    const text = createSiweMessage({
      domain: issued.body.domain,
      uri: issued.body.uri,
      address: account.address,
      version: '1',
      chainId: 1,
      nonce: issued.body.nonce,
      issuedAt: new Date(),
    })
    return { text, signature: await account.signMessage({ message: text }) }
  }

  it('lets exactly one of 50 concurrent verifies of one signed message through', async () => {
    const { text, signature } = await signedOnServer(wallet())
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        api(server.url).post<Body>('/v1/auth/verify', { message: text, signature }),
      ),
    )
    const statuses = responses.map((r) => r.status)
    assert.equal(statuses.filter((s) => s === 200).length, 1, JSON.stringify(statuses))
    assert.equal(statuses.filter((s) => s === 401).length, 49, JSON.stringify(statuses))
  })

  it('signs one new wallet in 10 times at once into a single account', async () => {
    const account = wallet()
    const signed = await Promise.all(Array.from({ length: 10 }, () => signedOnServer(account)))
    const responses = await Promise.all(
      signed.map(({ text, signature }) =>
        api(server.url).post<Body>('/v1/auth/verify', { message: text, signature }),
      ),
    )
    assert.deepEqual(
      responses.map((r) => r.status),
      Array(10).fill(200),
      JSON.stringify(responses.map((r) => r.body)),
    )
    const accountIds = new Set(responses.map((r) => r.body.accountId))
    assert.equal(accountIds.size, 1, `one wallet became ${accountIds.size} accounts`)
  })
})
