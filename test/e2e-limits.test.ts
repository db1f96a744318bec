import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import {
  api,
  type RunningBerth,
  type SignedIn,
  signIn,
  startBerth,
  startBerthOnPostgres,
} from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'

// Rate limits and stream limits against the real `berth serve`: sign-in per client address and for
// everybody together (the nonce table's bound), writes per account, open streams per account, and
// open streams closed once their credential or their deployment is no longer the account's.

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Body = any

/** An SSE request held open; `ended` resolves with the time its body ended. */
async function openStream(url: string, token: string) {
  const abort = new AbortController()
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
    signal: abort.signal,
  })
  const ended =
    response.status === 200
      ? (async () => {
          const reader = response.body!.getReader()
          try {
            while (!(await reader.read()).done) {}
          } catch {
            // aborted by this side
          }
          return Date.now()
        })()
      : Promise.resolve(Date.now())
  return {
    status: response.status,
    body: response.status === 200 ? undefined : await response.json(),
    ended,
    close: () => abort.abort(),
  }
}

function assertLimited(reply: { status: number; headers: Headers; body: Body }, what: RegExp) {
  assert.equal(reply.status, 429, JSON.stringify(reply.body))
  assert.equal(reply.body.error.code, 'rate_limited')
  assert.match(reply.body.error.message, what)
  assert.ok(Number(reply.headers.get('retry-after')) >= 1, 'Retry-After says when to come back')
}

describe('sign-in limits (e2e)', () => {
  let berth: RunningBerth
  before(async () => {
    berth = await startBerth({
      env: {
        // One proxy in front: the client address is the last X-Forwarded-For entry.
        BERTH_TRUST_PROXY_HOPS: '1',
        BERTH_RATE_LIMITS__SIGN_IN_PER_MINUTE: '3',
        BERTH_RATE_LIMITS__SIGN_IN_BURST: '3',
        BERTH_RATE_LIMITS__NONCES_PER_MINUTE: '7',
      },
    })
  })
  after(async () => berth?.stop())

  const nonceFrom = (address: string) =>
    api(berth.url).post<Body>('/v1/auth/nonce', undefined, { 'x-forwarded-for': `203.0.113.99, ${address}` })

  it('limits sign-in per client address, and nonces for everybody together', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await nonceFrom('198.51.100.1')).status, 200)
    assertLimited(await nonceFrom('198.51.100.1'), /sign-in requests from this address/)
    // Verify shares the address's bucket.
    const verify = await api(berth.url).post<Body>(
      '/v1/auth/verify',
      { message: 'x', signature: '0x00' },
      { 'x-forwarded-for': '198.51.100.1' },
    )
    assertLimited(verify, /sign-in requests from this address/)
    // Other addresses have buckets of their own, until the nonces of everybody run out (7 a minute).
    for (const address of ['198.51.100.2', '198.51.100.3', '198.51.100.4', '198.51.100.5']) {
      assert.equal((await nonceFrom(address)).status, 200, address)
    }
    assertLimited(await nonceFrom('198.51.100.6'), /sign-ins at the moment/)
  })
})

describe('write and stream limits (e2e, PostgreSQL)', () => {
  let berth: RunningBerth
  let alice: SignedIn
  let bob: SignedIn
  let aliceDeployment: string
  let bobDeployment: string
  let db: pg.Client

  before(async () => {
    berth = await startBerthOnPostgres({
      env: {
        BERTH_RATE_LIMITS__WRITES_PER_MINUTE: '6',
        BERTH_RATE_LIMITS__WRITE_BURST: '5',
        BERTH_STREAMS__PER_ACCOUNT: '2',
        BERTH_STREAMS__RECHECK_SECONDS: '1',
      },
    })
    alice = await signIn(berth.url)
    bob = await signIn(berth.url)
    db = new pg.Client({ connectionString: berth.databaseUrl })
    await db.connect()
  })
  after(async () => {
    await db?.end()
    await berth?.stop()
  })

  const create = (who: SignedIn, name: string) =>
    api(berth.url, who.token).post<Body>('/v1/deployments', { name, image: 'example/app:1' })
  const eventsUrl = (id: string) => `${berth.url}/v1/deployments/${id}/events`

  it('limits writes per account, with reads and other accounts unaffected', async () => {
    const created = []
    for (let i = 0; i < 5; i++) created.push(await create(alice, `w-${i}`))
    assert.deepEqual(
      created.map((r) => r.status),
      [202, 202, 202, 202, 202],
    )
    aliceDeployment = created[0]!.body.id
    assertLimited(await create(alice, 'w-5'), /writes from this account/)
    assert.equal(
      (await api(berth.url, alice.token).get<Body>('/v1/deployments')).body.total,
      5,
      'nothing written',
    )
    assert.equal(
      (await api(berth.url, alice.token).get<Body>(`/v1/deployments/${aliceDeployment}`)).status,
      200,
    )
    const theirs = await create(bob, 'b-0')
    assert.equal(theirs.status, 202)
    bobDeployment = theirs.body.id
  })

  it('caps the streams an account has open, and frees a place when one closes', async () => {
    const first = await openStream(eventsUrl(aliceDeployment), alice.token)
    const second = await openStream(eventsUrl(aliceDeployment), alice.token)
    assert.deepEqual([first.status, second.status], [200, 200])
    const third = await openStream(eventsUrl(aliceDeployment), alice.token)
    assert.equal(third.status, 429)
    assert.match(third.body.error.message, /open streams \(at most 2\)/)
    const bobs = await openStream(eventsUrl(bobDeployment), bob.token)
    assert.equal(bobs.status, 200, 'another account has its own streams')
    first.close()
    await first.ended
    await waitFor('a place freed', async () => {
      const again = await openStream(eventsUrl(aliceDeployment), alice.token)
      again.close()
      return again.status === 200
    })
    second.close()
    bobs.close()
  })

  it('closes a stream within seconds of its key being deleted, or its session ended', async () => {
    const key = await api(berth.url, bob.token).post<Body>('/v1/api-keys', { name: 'watcher' })
    assert.equal(key.status, 201)
    const byKey = await openStream(eventsUrl(bobDeployment), key.body.key)
    assert.equal(byKey.status, 200)
    const deleted = Date.now()
    assert.equal((await api(berth.url, bob.token).del(`/v1/api-keys/${key.body.id}`)).status, 200)
    assert.ok((await byKey.ended) - deleted < 10_000, 'closed within seconds of the key’s deletion')

    const bySession = await openStream(eventsUrl(bobDeployment), bob.token)
    assert.equal(bySession.status, 200)
    const loggedOut = Date.now()
    assert.equal((await api(berth.url, bob.token).post('/v1/auth/logout')).status, 200)
    assert.ok((await bySession.ended) - loggedOut < 10_000, 'closed within seconds of the logout')
  })

  it('closes a stream within seconds of its deployment changing owner', async () => {
    const watching = await openStream(eventsUrl(aliceDeployment), alice.token)
    assert.equal(watching.status, 200)
    // What an NFT transfer does to a bound deployment: it moves to the new holder's account.
    const { rows } = await db.query('select id from accounts where address = $1', [bob.address.toLowerCase()])
    const moved = Date.now()
    await db.query('update deployments set owner_id = $1 where id = $2', [rows[0].id, aliceDeployment])
    assert.ok((await watching.ended) - moved < 10_000, 'closed within seconds of the change of owner')
  })
})
