import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { AuditEntry } from '../src/audit/audit-log.ts'
import { chainProblems, entryHash } from '../src/audit/chain-hash.ts'
import { runCli } from '../src/cli/main.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { type Caller, createTestApp, type TestApp } from './helpers/http-app.ts'
import { createOrg } from './helpers/orgs.ts'
import { createStack, type Stack } from './helpers/stack.ts'

// The audit log: each change writes an entry naming who (account, key, operator), from where and
// in which request; a refused change is logged as denied; an organisation's log is for its admins
// and owners; and the hash chain shows an entry edited or deleted behind berth's back.

const ADMIN_TOKEN = 'audit-test-admin-token-0123456789'
const wallet = (n: number) => `0x${n.toString(16).padStart(2, '0').repeat(20)}`
const org = { 'berth-org': 'ledgerco' }

for (const kind of databaseKinds) {
  describe(`audit log (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let owner: Caller
    let deployer: Caller
    let viewer: Caller

    /** Every entry of the caller's log (or the organisation's, with its header), oldest first. */
    async function entriesOf(caller: Caller, headers: Record<string, string> = {}) {
      const items: AuditEntry[] = []
      let cursor = ''
      let head: { seq: number; hash: string } | null = null
      for (;;) {
        const page = await caller(
          'GET',
          `/v1/audit?limit=7${cursor ? `&cursor=${cursor}` : ''}`,
          undefined,
          headers,
        )
        assert.equal(page.status, 200, JSON.stringify(page.body))
        items.push(...page.body.items)
        head = page.body.head
        if (!page.body.nextCursor) return { items, head }
        cursor = page.body.nextCursor
      }
    }

    before(async () => {
      database = await openTestDatabase(kind)
      // One proxy in front: the client address is the one it adds to X-Forwarded-For.
      stack = await createStack(database, { flags: { adminToken: ADMIN_TOKEN, trustProxyHops: 1 } })
      app = await createTestApp(database, stack)
      owner = await app.user(wallet(0x51))
      await createOrg(owner, { name: 'Ledger Co', slug: 'ledgerco' }, [
        [wallet(0x52), 'deployer'],
        [wallet(0x53), 'viewer'],
      ])
      deployer = await app.user(wallet(0x52))
      viewer = await app.user(wallet(0x53))
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    it('writes an entry for each change, naming the actor and the request it came in', async () => {
      const made = await deployer(
        'POST',
        '/v1/deployments',
        { name: 'api', image: 'app:1' },
        {
          ...org,
          'x-request-id': 'req-create-api',
        },
      )
      assert.equal(made.status, 202, JSON.stringify(made.body))
      assert.equal(
        (await deployer('POST', `/v1/deployments/${made.body.id}/stop`, undefined, org)).status,
        202,
      )
      assert.equal(
        (await owner('PATCH', `/v1/orgs/ledgerco/members/${wallet(0x53)}`, { role: 'billing' })).status,
        200,
      )
      assert.equal(
        (await owner('PATCH', `/v1/orgs/ledgerco/members/${wallet(0x53)}`, { role: 'viewer' })).status,
        200,
      )

      const { items, head } = await entriesOf(owner, org)
      assert.deepEqual(
        items.map((e) => `${e.action} ${e.target}`),
        [
          'org.create org:ledgerco',
          `org.member_add member:${wallet(0x52)}`,
          `org.member_add member:${wallet(0x53)}`,
          `deployment.create deployment:${made.body.id}`,
          `deployment.stop deployment:${made.body.id}`,
          `org.member_role member:${wallet(0x53)}`,
          `org.member_role member:${wallet(0x53)}`,
        ],
      )
      const create = items[3]!
      const deployerKeys = await deployer('GET', '/v1/api-keys')
      assert.deepEqual(create.actor, { type: 'key', id: deployerKeys.body.items[0].id })
      assert.equal(create.requestId, 'req-create-api')
      assert.equal(create.outcome, 'ok')
      assert.deepEqual(create.detail, { name: 'api', image: 'app:1', provider: 'simulated' })
      assert.deepEqual(items[5]!.detail, { from: 'viewer', to: 'billing' })
      assert.deepEqual(
        items.map((e) => e.seq),
        [1, 2, 3, 4, 5, 6, 7],
      )
      assert.deepEqual(chainProblems(items, head ?? undefined), [])

      // The deployment's own events name the same actor, not a generic "api".
      const events = await deployer('GET', `/v1/deployments/${made.body.id}/events`, undefined, org)
      assert.equal(events.body.items[0].actor, `key:${deployerKeys.body.items[0].id}`)
    })

    it('records the client address in each entry and as the last use of each API key', async () => {
      const from = (ip: string) => ({ ...org, 'x-forwarded-for': ip })
      const made = await deployer(
        'POST',
        '/v1/deployments',
        { name: 'addressed', image: 'app:1' },
        from('127.0.0.9'),
      )
      assert.equal(made.status, 202)
      const { items } = await entriesOf(owner, org)
      assert.equal(items.find((e) => e.target === `deployment:${made.body.id}`)?.ip, '127.0.0.9')
      const seen = await deployer('GET', '/v1/api-keys', undefined, { 'x-forwarded-for': '127.0.0.9' })
      assert.equal(seen.body.items[0].lastUsedIp, '127.0.0.9')
      assert.ok(Date.now() - Date.parse(seen.body.items[0].lastUsedAt) < 60_000)
      // A use from another address is recorded at once, not a minute later.
      const moved = await deployer('GET', '/v1/api-keys', undefined, { 'x-forwarded-for': '127.0.0.10' })
      assert.equal(moved.body.items[0].lastUsedIp, '127.0.0.10')
    })

    it("keeps an organisation's log to its admins and owners, and everyone else's to themselves", async () => {
      const asViewer = await viewer('GET', '/v1/audit', undefined, org)
      assert.equal(asViewer.status, 403)
      assert.match(asViewer.body.error.message, /admin or owner role/)
      assert.equal((await deployer('GET', '/v1/audit', undefined, org)).status, 403)
      const stranger = await app.user(wallet(0x54))
      assert.equal((await stranger('GET', '/v1/audit', undefined, org)).status, 404)
      // Without the header a member reads their own log, which has none of the organisation's.
      const orgId = (await viewer('GET', '/v1/orgs/ledgerco')).body.id
      const own = await viewer('GET', '/v1/audit')
      assert.equal(own.status, 200)
      assert.ok(own.body.items.length > 0)
      assert.ok(own.body.items.every((e: AuditEntry) => e.owner !== orgId))
      assert.equal((await viewer('GET', '/v1/audit?owner=ledgerco')).status, 403)

      // The operator reads anyone's, by slug or address, and filters.
      const operator = app.admin()
      const byOperator = await operator('GET', '/v1/audit?owner=ledgerco&action=org.*')
      assert.equal(byOperator.status, 200, JSON.stringify(byOperator.body))
      assert.ok(byOperator.body.items.length >= 5)
      assert.ok(byOperator.body.items.every((e: AuditEntry) => e.action.startsWith('org.')))
      const bad = await operator('GET', '/v1/audit?actor=nobody')
      assert.equal(bad.status, 400)
      assert.match(bad.body.error.message, /type:id/)
      assert.equal((await operator('GET', '/v1/audit?owner=no-such-org')).status, 404)
      // PostgreSQL cannot compare text with a NUL in it: refused, naming the parameter.
      const nul = await operator('GET', '/v1/audit?action=x&target=a%00b')
      assert.equal(nul.status, 400)
      assert.match(nul.body.error.message, /query\.target: NUL/)
    })

    it('logs a change refused for want of a role as denied, and changes nothing', async () => {
      const refused = await viewer('POST', '/v1/deployments', { name: 'sneaky', image: 'app:1' }, org)
      assert.equal(refused.status, 403)
      const { items } = await entriesOf(owner, org)
      const denied = items.at(-1)!
      assert.equal(denied.outcome, 'denied')
      assert.equal(denied.action, 'POST /v1/deployments')
      const viewerKeys = await viewer('GET', '/v1/api-keys')
      assert.deepEqual(denied.actor, { type: 'key', id: viewerKeys.body.items[0].id })
      const listed = await owner('GET', '/v1/deployments', undefined, org)
      assert.ok(!listed.body.items.some((d: { name: string }) => d.name === 'sneaky'))

      // Refused on a route that names the organisation in its path: still the organisation's log.
      assert.equal((await viewer('DELETE', '/v1/orgs/ledgerco')).status, 403)
      // A path no client would send (a NUL in it) is refused, and recorded, like any other.
      assert.equal((await viewer('POST', '/v1/deployments/%00/stop', undefined, org)).status, 403)
      const [byPath, odd] = (await entriesOf(owner, org)).items.slice(-2)
      assert.deepEqual([byPath!.action, byPath!.outcome], ['DELETE /v1/orgs/{org}', 'denied'])
      assert.deepEqual(
        [odd!.action, odd!.target],
        ['POST /v1/deployments/{id}/stop', '/v1/deployments//stop'],
      )
    })

    it('keeps text it cannot store as it came (a lone surrogate) without failing the change', async () => {
      const made = await owner('POST', '/v1/orgs', { name: 'odd \ud800 name', slug: 'odd-name' })
      assert.equal(made.status, 201, JSON.stringify(made.body))
      const { items } = await entriesOf(owner, { 'berth-org': 'odd-name' })
      assert.equal(items[0]?.detail?.name, 'odd \ufffd name')
      const far = await owner('GET', '/v1/audit?from=0000-01-01T00:00:00Z', undefined, org)
      assert.equal(far.status, 400)
      assert.match(far.body.error.message, /years 1 to 9999/)
    })

    it('keeps one unbroken chain when many changes of one owner commit at once', async () => {
      const results = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          deployer('POST', '/v1/deployments', { name: `burst-${i}`, image: 'app:1' }, org),
        ),
      )
      assert.ok(results.every((r) => r.status === 202))
      const { items, head } = await entriesOf(owner, org)
      assert.equal(items.filter((e) => String(e.detail?.name).startsWith('burst-')).length, 16)
      assert.deepEqual(chainProblems(items, head ?? undefined), [])
    })

    /** `berth audit verify` run against this server with the key, as a user would run it. */
    async function verifyWithCli(key: string, configDir = mkdtempSync(join(tmpdir(), 'berth-xdg-'))) {
      let stdout = ''
      const code = await runCli(['audit', 'verify', '--server', 'http://berth.test'], {
        stdout: { write: (text: string) => (stdout += text) },
        stderr: { write: (text: string) => (stdout += text) },
        env: {
          BERTH_TOKEN: key,
          HOME: '/nonexistent',
          XDG_CONFIG_HOME: configDir,
        },
        fetch: async (url, init) => {
          const { pathname, search } = new URL(String(url))
          return app.fetch(`${pathname}${search}`, init ?? {})
        },
        now: () => new Date(),
      })
      return { code, stdout }
    }

    it('shows an entry edited, deleted in the middle or deleted at the end', async () => {
      const key = await app.userKey(wallet(0x55))
      const tenant = app.bearer(key)
      for (const name of ['a', 'b', 'c', 'd']) {
        assert.equal((await tenant('POST', '/v1/deployments', { name, image: 'app:1' })).status, 202)
      }
      const before = await entriesOf(tenant)
      assert.deepEqual(chainProblems(before.items, before.head ?? undefined), [])
      const intact = await verifyWithCli(key)
      assert.equal(intact.code, 0, intact.stdout)
      assert.match(intact.stdout, /^the audit log is intact: 5 entries, the last 5 /)
      const [, second, third, , last] = before.items
      // berth's own database role cannot rewrite history…
      await assert.rejects(
        database.query(`update audit_entries set target = 'deployment:elsewhere' where id = $1`, [
          second!.id,
        ]),
        /append-only/,
      )
      // …so the tampering below is someone who turned that off.
      await database.query('alter table audit_entries disable trigger audit_entries_no_change', [])
      try {
        await database.query(`update audit_entries set target = 'deployment:elsewhere' where id = $1`, [
          second!.id,
        ])
        const edited = await entriesOf(tenant)
        assert.deepEqual(chainProblems(edited.items, edited.head ?? undefined), [
          `entry ${second!.seq} was changed after it was written (its hash does not match)`,
        ])
        const caught = await verifyWithCli(key)
        assert.equal(caught.code, 5)
        assert.equal(
          caught.stdout,
          `the audit log was altered:\n  entry ${second!.seq} was changed after it was written (its hash does not match)\n`,
        )
        await database.query('delete from audit_entries where id = $1', [third!.id])
        await database.query('delete from audit_entries where id = $1', [last!.id])
        const deleted = await entriesOf(tenant)
        assert.deepEqual(chainProblems(deleted.items, deleted.head ?? undefined), [
          `entry ${second!.seq} was changed after it was written (its hash does not match)`,
          `entries ${third!.seq}…${third!.seq} are missing (deleted?)`,
          `entries ${last!.seq}…${last!.seq} are missing at the end (deleted?)`,
        ])
      } finally {
        await database.query('alter table audit_entries enable trigger audit_entries_no_change', [])
      }
    })

    it('catches a history rewritten hashes and all, by the entry verify saw intact before', async () => {
      const key = await app.userKey(wallet(0x56))
      const tenant = app.bearer(key)
      for (const name of ['x', 'y']) {
        assert.equal((await tenant('POST', '/v1/deployments', { name, image: 'app:1' })).status, 202)
      }
      const configDir = mkdtempSync(join(tmpdir(), 'berth-xdg-'))
      assert.equal((await verifyWithCli(key, configDir)).code, 0)
      // Someone with the database rewrites the first deployment's entry and every hash after it.
      const { items } = await entriesOf(tenant)
      await database.query('alter table audit_entries disable trigger audit_entries_no_change', [])
      try {
        let prevHash = items[0]!.prevHash
        for (const entry of items) {
          const forged = {
            ...entry,
            prevHash,
            target: entry.seq === 2 ? 'deployment:elsewhere' : entry.target,
          }
          prevHash = entryHash(forged)
          await database.query(
            'update audit_entries set target = $1, prev_hash = $2, hash = $3 where id = $4',
            [forged.target, forged.prevHash, prevHash, entry.id],
          )
        }
        await database.query('update audit_heads set hash = $1 where owner_id = $2', [
          prevHash,
          items[0]!.owner,
        ])
      } finally {
        await database.query('alter table audit_entries enable trigger audit_entries_no_change', [])
      }
      const rewritten = await entriesOf(tenant)
      assert.deepEqual(
        chainProblems(rewritten.items, rewritten.head ?? undefined),
        [],
        'the chain alone holds',
      )
      const caught = await verifyWithCli(key, configDir)
      assert.equal(caught.code, 5)
      assert.match(
        caught.stdout,
        new RegExp(
          `entry ${items.at(-1)!.seq} is not the one verified at .*: the log up to it was rewritten`,
        ),
      )
      // A client that never saw the log before cannot tell.
      assert.equal((await verifyWithCli(key)).code, 0)
    })
  })
}
