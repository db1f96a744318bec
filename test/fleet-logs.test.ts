import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { assignmentStreamMessage } from '../src/domain/node.ts'
import { signWithAgentKey } from '../src/fleet/agent-key.ts'
import { NODE_HEADER, TIMESTAMP_HEADER } from '../src/fleet/assignment-stream.ts'
import { SIGNATURE_HEADER } from '../src/fleet/heartbeats.ts'
import type { LogBatch, LogRequest } from '../src/fleet/log-relay.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { beat, enrollTestNode, steppingClock, type TestNode } from './helpers/fleet.ts'
import { type Caller, createTestApp, type TestApp } from './helpers/http-app.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'

// Logs of a fleet deployment, read from its node: a reader's request reaches the node on its
// assignment stream, the node posts the lines back in signed, numbered batches, and the reader
// gets them (through the database, so any control plane replica could have taken the batch). A
// batch not signed by the node, a replayed batch and a batch for a request nobody reads any more
// are refused. (With a real agent and container: e2e-fleet-deploy.test.ts.)

for (const kind of databaseKinds) {
  describe(`fleet logs (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let alice: Caller
    let aliceKey: string
    const clock = steppingClock()

    before(async () => {
      database = await openTestDatabase(kind)
      stack = await createStack(database, { flags: { fleet: { open: true, minUptimePercent: 0 } } })
      app = await createTestApp(database, stack, { now: clock.now })
      aliceKey = await app.userKey(`0x${'e7'.repeat(20)}`)
      alice = app.bearer(aliceKey)
    })
    after(async () => {
      await stack.stop()
      await database.dispose()
    })

    /** Opens the node's stream and waits for its first log request. */
    const nextLogRequest = async (node: TestNode): Promise<LogRequest> => {
      const timestamp = clock.now().toISOString()
      const res = await app.fetch('/v1/fleet/assignments', {
        headers: {
          [NODE_HEADER]: node.nodeId,
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: signWithAgentKey(node.key, assignmentStreamMessage(node.nodeId, timestamp)),
        },
      })
      assert.equal(res.status, 200)
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
      let text = ''
      for (;;) {
        const found = /event: logs\ndata: (.*)\n\n/.exec(text)
        if (found) {
          await reader.cancel()
          return JSON.parse(found[1]!) as LogRequest
        }
        text += (await reader.read()).value ?? ''
      }
    }
    const post = async (node: TestNode, batch: LogBatch, signer: TestNode = node) => {
      const body = JSON.stringify(batch)
      const res = await app.fetch('/v1/fleet/logs', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signWithAgentKey(signer.key, body),
        },
        body,
      })
      return res.status
    }

    it('reads a deployment’s log from its node, and refuses batches that are not the node’s own', async () => {
      const node = await enrollTestNode(app, { name: 'logger' })
      const stranger = await enrollTestNode(app, { name: 'stranger' })
      await beat(app, node, 1, clock.step())
      const made = await alice('POST', '/v1/deployments', {
        name: 'chatty',
        image: 'app:1',
        provider: 'fleet',
        resources: { cpus: 1, memoryMb: 256, diskMb: 100 },
      })
      const id = made.body.id as string
      await waitFor(
        'placed',
        async () => (await alice('GET', `/v1/deployments/${id}`)).body.status === 'deploying',
      )

      const reading = app.fetch(`/v1/deployments/${id}/logs?tail=3`, {
        headers: { authorization: `Bearer ${aliceKey}` },
      })
      const request = await nextLogRequest(node)
      assert.equal(request.deploymentId, id)
      assert.equal(request.follow, false)
      const line = (text: string, second: number) => ({
        at: new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString(),
        stream: 'stdout' as const,
        text,
      })
      const batch = { nodeId: node.nodeId, requestId: request.requestId, batch: 1, done: false }
      assert.equal(await post(node, { ...batch, lines: [line('first', 1)] }, stranger), 401)
      assert.equal(await post(node, { ...batch, lines: [line('first', 1), line('second', 2)] }), 204)
      assert.equal(await post(node, { ...batch, lines: [line('again', 3)] }), 400, 'a replayed batch')
      const second = { ...batch, batch: 2 }
      assert.equal(
        await post(node, { ...second, lines: [line('3', 3), line('4', 4)] }),
        400,
        'more than the tail',
      )
      const yearZero = { ...line('old', 1), at: '0000-01-01T00:00:00Z' }
      assert.equal(await post(node, { ...second, lines: [yearZero] }), 400, 'a time PostgreSQL cannot hold')
      assert.equal(
        await post(node, { ...second, done: true, lines: [line('third \ud800 half a pair', 3)] }),
        204,
      )

      const answer = await reading
      assert.equal(answer.status, 200)
      const lines = (await answer.text()).trim().split('\n')
      assert.deepEqual(lines, [
        '2026-01-01T00:00:01.000Z stdout first',
        '2026-01-01T00:00:02.000Z stdout second',
        '2026-01-01T00:00:03.000Z stdout third \uFFFD half a pair',
      ])
      // The reader is done: the request is gone, and a further batch tells the node to stop.
      assert.equal(await post(node, { ...batch, batch: 3, done: true, lines: [] }), 404)

      // Following: lines reach the reader as the node sends them, until the reader goes.
      const reader = new AbortController()
      const followed = await app.fetch(`/v1/deployments/${id}/logs?tail=0&follow=1`, {
        headers: { authorization: `Bearer ${aliceKey}` },
        signal: reader.signal,
      })
      const live = await nextLogRequest(node)
      assert.equal(live.follow, true)
      const text = followed.body!.pipeThrough(new TextDecoderStream()).getReader()
      const next = { nodeId: node.nodeId, requestId: live.requestId, done: false }
      assert.equal(await post(node, { ...next, batch: 1, lines: [line('live one', 4)] }), 204)
      let seen = ''
      while (!seen.includes('live one')) seen += (await text.read()).value ?? ''
      assert.equal(await post(node, { ...next, batch: 2, lines: [line('live two', 5)] }), 204)
      while (!seen.includes('live two')) seen += (await text.read()).value ?? ''
      reader.abort()
      await text.cancel().catch(() => undefined)
      await waitFor(
        'the node told to stop',
        async () => (await post(node, { ...next, batch: 3, lines: [] })) === 404,
      )
    })
  })
}
