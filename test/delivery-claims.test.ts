import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { claimDue, recordOutcomes } from '../src/notify/deliveries.ts'
import { pruneTold } from '../src/notify/retention.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'

// The delivery rows underneath the sender: a claim shares the work out between targets however
// long one's backlog is, never puts more than the limit in flight at one, and gives a row to one
// claimer only; an attempt's outcome never revives a delivery that ended meanwhile; and what is
// older than the retention is deleted, except what is still being delivered.

const lease = { leaseSeconds: 30, perOwner: 100 }

for (const kind of databaseKinds) {
  describe(`delivery claims and retention (${kind})`, () => {
    let database: TestDatabase
    let ownerId: string

    before(async () => {
      database = await openTestDatabase(kind)
      ownerId = randomUUID()
      await database.query('insert into accounts (id, address) values ($1, $2)', [
        ownerId,
        `0x${'cd'.repeat(20)}`,
      ])
    })
    after(() => database.dispose())

    async function target(of = ownerId): Promise<string> {
      const [row] = await database.query<{ id: string }>(
        `insert into notify_targets (id, owner_id, kind, shown, sealed)
         values (gen_random_uuid(), $1, 'webhook', 'https://hooks.example/x', 'sealed') returning id`,
        [of],
      )
      return row!.id
    }

    /** `count` deliveries to `targetId`, due `ageSeconds` ago (and made that long ago). */
    async function deliveries(targetId: string, count: number, ageSeconds: number): Promise<void> {
      await database.query(
        `with made as (
           insert into outbox_events (owner_id, type, payload, position, created_at)
           select $1, 'balance.low', '{}'::jsonb, n, now() - $3 * interval '1 second'
             from generate_series(1, $4::int) n returning seq, created_at)
         insert into notify_deliveries (event_seq, target_id, next_attempt_at, created_at)
         select seq, $2, created_at, created_at from made`,
        [ownerId, targetId, ageSeconds, count],
      )
    }

    const clear = () => database.query('delete from notify_deliveries', [])

    it("claims a quiet target's delivery beside a long backlog at another", async () => {
      await clear()
      const backlogged = await target()
      const quiet = await target()
      await deliveries(backlogged, 500, 3600)
      await deliveries(quiet, 1, 1)
      const claimed = await claimDue(database, 'sender-a', { limit: 8, perTarget: 4, ...lease })
      const at = (id: string) => claimed.filter((c) => c.targetId === id).length
      assert.equal(at(quiet), 1, 'the quiet target is not starved')
      assert.equal(at(backlogged), 4, 'no more than four in flight at the backlogged one')
    })

    it('never gives one row to two claimers, nor passes the limit counting their claims', async () => {
      await clear()
      const busy = await target()
      await deliveries(busy, 50, 60)
      const [a, b] = await Promise.all([
        claimDue(database, 'sender-a', { limit: 10, perTarget: 6, ...lease }),
        claimDue(database, 'sender-b', { limit: 10, perTarget: 6, ...lease }),
      ])
      const ids = [...a!, ...b!].map((c) => c.id)
      assert.equal(new Set(ids).size, ids.length, 'no row claimed twice')
      assert.ok(ids.length <= 12, `${ids.length} claimed`)
      const third = await claimDue(database, 'sender-c', { limit: 10, perTarget: 6, ...lease })
      assert.equal(ids.length + third.length, 6, 'six in flight at the target, over all claimers')
    })

    it("keeps to one owner's limit over all its targets, while another owner's work goes out", async () => {
      await clear()
      const many = await Promise.all(Array.from({ length: 5 }, () => target()))
      for (const id of many) await deliveries(id, 10, 60)
      const otherOwner = randomUUID()
      await database.query('insert into accounts (id, address) values ($1, $2)', [
        otherOwner,
        `0x${'ce'.repeat(20)}`,
      ])
      const theirs = await target(otherOwner)
      await deliveries(theirs, 1, 1)
      const limits = { limit: 50, perTarget: 4, perOwner: 6, leaseSeconds: 30 }
      const first = await claimDue(database, 'sender-a', limits)
      assert.equal(first.filter((c) => c.targetId === theirs).length, 1, 'the other owner is not starved')
      assert.equal(first.filter((c) => many.includes(c.targetId)).length, 6, 'six for the first owner')
      assert.equal((await claimDue(database, 'sender-b', limits)).length, 0, 'counting the other claimer')
    })

    it('leaves a delivery cancelled while its attempt was under way', async () => {
      await clear()
      const doomed = await target()
      await deliveries(doomed, 1, 1)
      const [claimed] = await claimDue(database, 'sender-a', { limit: 1, perTarget: 1, ...lease })
      await database.query(`update notify_deliveries set state = 'cancelled' where id = $1`, [claimed!.id])
      const ends = await recordOutcomes(
        database,
        'sender-a',
        [{ delivery: claimed!, attempt: { ok: true, status: 204, latencyMs: 3 } }],
        [1],
      )
      assert.equal(ends.size, 0)
      const [row] = await database.query<{ state: string }>(
        'select state from notify_deliveries where id = $1',
        [claimed!.id],
      )
      assert.equal(row!.state, 'cancelled')
    })

    it('deletes what is past its retention, keeping what is still being delivered', async () => {
      await clear()
      const kept = await target()
      await deliveries(kept, 3, 40 * 86_400)
      await deliveries(kept, 2, 60)
      await database.query(
        `update notify_deliveries set state = 'succeeded'
          where id in (select id from notify_deliveries where created_at < now() - interval '30 days' limit 2)`,
        [],
      )
      await database.query(
        `insert into notifications (account_id, type, message, created_at)
         values ($1, 'balance.low', 'old', now() - interval '40 days'), ($1, 'balance.low', 'new', now())`,
        [ownerId],
      )
      const before = await database.query<{ n: number }>('select count(*)::int as n from outbox_events', [])
      const pruned = await pruneTold(database, 30)
      assert.deepEqual(pruned, { deliveries: 2, events: 2, notifications: 1 })
      const left = await database.query<{ state: string; old: boolean }>(
        `select state, created_at < now() - interval '30 days' as old from notify_deliveries order by created_at`,
        [],
      )
      assert.deepEqual(
        left.map((r) => [r.state, r.old]),
        [
          ['pending', true],
          ['pending', false],
          ['pending', false],
        ],
      )
      const after = await database.query<{ n: number }>('select count(*)::int as n from outbox_events', [])
      assert.equal(after[0]!.n, before[0]!.n - 2)
      const notes = await database.query<{ message: string }>(
        'select message from notifications where account_id = $1',
        [ownerId],
      )
      assert.deepEqual(
        notes.map((n) => n.message),
        ['new'],
      )
    })
  })
}
