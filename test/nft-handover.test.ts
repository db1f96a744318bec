import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { appendAudit } from '../src/audit/audit-log.ts'
import { systemSource } from '../src/domain/actor.ts'
import { deploymentSpecSchema } from '../src/domain/spec.ts'
import { applyHolderChange } from '../src/nft/transfer.ts'
import { auditLines } from './helpers/audit.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { createTestApp, type TestApp } from './helpers/http-app.ts'
import { createAccount, createStack, type Stack } from './helpers/stack.ts'
import { testVault } from './helpers/vault.ts'
import { waitFor } from './helpers/wait.ts'

// What a change of holder leaves for the reconciler, on the simulated provider: the previous
// holder's instances go before anything starts again, volumes are carried over only when the
// collection says so, and the new holder sees the deployment's history from the transfer on.
// (On the real engine, with the container, network, env, logs and volume: test/docker/nft-handover.ts.)

const contract = `0x${'ab'.repeat(20)}`
const wallets = { a: `0x${'a1'.repeat(20)}`, b: `0x${'b2'.repeat(20)}` }

for (const kind of databaseKinds) {
  describe(`NFT handover (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database)
      app = await createTestApp(database, stack)
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    async function boundRunning(tokenId: string) {
      const ownerId = await createAccount(database, `0x${tokenId.padStart(40, 'c')}`)
      const spec = deploymentSpecSchema.parse({
        name: `agent-${tokenId}`,
        image: 'agent:1',
        nft: { chainId: 1, contract, tokenId, standard: 'erc721' },
      })
      const { row } = await stack.store.create({
        source: systemSource('test'),
        ownerId,
        spec,
        provider: 'simulated',
      })
      await waitFor('running', async () => (await stack.store.get(ownerId, row.id)).status === 'running')
      return row
    }

    const TRANSFER_TX = `0x${'ab'.repeat(32)}`
    const transfer = (tokenId: string, to: string, carryVolumes: boolean) =>
      database.db.transaction(async (tx) => {
        const applied = await applyHolderChange(
          tx,
          { chainId: 1, contract, tokenId, to, burned: false, source: 'transfer', txHash: TRANSFER_TX },
          { carrySecrets: false, carryVolumes, vault: testVault(database.db) },
        )
        await appendAudit(tx, applied?.audit ?? [])
        return applied
      })

    it('removes the old instances, starts a new volume generation, and hides the earlier history', async () => {
      const row = await boundRunning('1')
      const userB = await app.user(wallets.b)
      // The old holder spent restarts and left an error: none of it is the new holder's.
      await database.query(`update deployments set restart_count = 2, error = 'old trouble' where id = $1`, [
        row.id,
      ])
      const applied = await transfer('1', wallets.b, false)
      assert.ok(applied)
      const moved = await stack.store.get(applied.toOwnerId, row.id)
      assert.equal(moved.volumeGeneration, 1)
      assert.equal(moved.restartCount, 0)
      assert.equal(moved.error, null)
      assert.ok(moved.handoverSeq >= row.eventSeq, 'the history up to the transfer is the old holder’s')
      await waitFor('handed over', async () => {
        const now = await stack.store.get(applied.toOwnerId, row.id)
        return now.status === 'stopped' && now.handover === null
      })
      assert.equal(await stack.provider.observe(row.id), null, 'no instance of the old holder is left')
      const events = (await userB('GET', `/v1/deployments/${row.id}/events`)).body.items as Array<{
        type: string
        message: string
        actor: string
      }>
      assert.equal(events[0]?.type, 'nft_transferred')
      assert.ok(events.some((e) => /previous holder's instances and volumes were removed/.test(e.message)))
      assert.ok(!events.some((e) => e.type === 'running'), 'none of the old holder’s run is shown')
      // Both holders' audit logs say the chain moved it, naming the transfer's transaction.
      for (const ownerId of [applied.fromOwnerId, applied.toOwnerId]) {
        assert.ok((await auditLines(database, ownerId)).includes(`chain:${TRANSFER_TX} deployment.handover`))
      }
      assert.equal(events[0]?.actor, `chain:${TRANSFER_TX}`)
    })

    it('keeps the volume generation when the collection carries volumes over', async () => {
      const row = await boundRunning('2')
      const applied = await transfer('2', wallets.a, true)
      assert.ok(applied)
      const moved = await stack.store.get(applied.toOwnerId, row.id)
      assert.equal(moved.handover, 'carry')
      assert.equal(moved.volumeGeneration, 0)
    })
  })
}
