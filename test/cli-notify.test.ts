import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Webhook } from 'standardwebhooks'
import { generatePrivateKey } from 'viem/accounts'
import { children, createUser } from './helpers/cli-user.ts'
import { type RunningBerth, startBerth } from './helpers/server.ts'
import { waitFor } from './helpers/wait.ts'
import { type Receiver, startReceiver } from './helpers/webhook-receiver.ts'

// `berth webhooks`, `berth channels` and `berth notifications` as a user runs them against
// `berth serve`: a webhook added (its secret printed once), tested, its delivery log read and the
// delivery verified at a local receiver; a Slack channel listed without its token; the in-app list.

describe('berth CLI for webhooks and notifications (e2e)', { timeout: 180_000 }, () => {
  let server: RunningBerth
  let receiver: Receiver
  const user = createUser({ BERTH_PRIVATE_KEY: generatePrivateKey() })

  before(async () => {
    receiver = await startReceiver()
    server = await startBerth({ env: { BERTH_OUTBOUND__ALLOW: '127.0.0.1/32' } })
    const login = await user.run(['login', '--server', server.url])
    assert.equal(login.code, 0, login.stderr)
  })
  after(async () => {
    for (const child of children) child.kill('SIGKILL')
    await server?.stop()
    await receiver?.stop()
  })

  it('adds a webhook, tests it, and shows what was delivered', async () => {
    const added = await user.run(['webhooks', 'add', `${receiver.url}/cli`, '--events', 'deployment.running'])
    assert.equal(added.code, 0, added.stderr)
    const secret = /signing secret \(shown once, keep it\): (whsec_\S+)/.exec(added.stdout)?.[1]
    const id = /created webhook (\S+)/.exec(added.stdout)?.[1]
    assert.ok(secret && id, added.stdout)

    const listed = await user.run(['webhooks', 'ls'])
    assert.match(
      listed.stdout,
      new RegExp(`${id}\\s+webhook\\s+${receiver.url}/…/cli\\s+deployment.running\\s+on`),
    )
    assert.ok(!listed.stdout.includes(secret), 'the secret is not listed')

    const tested = await user.run(['webhooks', 'test', id])
    assert.equal(tested.code, 0, tested.stderr)
    const delivery = await waitFor('the test event', () => receiver.received.find((r) => r.path === '/cli'))
    const event = new Webhook(secret).verify(delivery.body, delivery.headers as Record<string, string>) as {
      type: string
    }
    assert.equal(event.type, 'webhook.test')
    const log = await waitFor('the delivery logged as succeeded', async () => {
      const shown = await user.run(['webhooks', 'deliveries', id, '--json'])
      const items = JSON.parse(shown.stdout).items as Array<{ state: string; eventType: string }>
      return items[0]?.state === 'succeeded' && items
    })
    assert.equal(log[0]!.eventType, 'webhook.test')

    const off = await user.run(['webhooks', 'disable', id])
    assert.equal(off.stdout, `webhook ${id} is off\n`)
    const refused = await user.run(['webhooks', 'events', id, 'deployment.exploded'])
    assert.equal(refused.code, 2, refused.stderr)
    assert.match(refused.stderr, /eventTypes\.0: Invalid option/)
  })

  it('lists a Slack channel without its token, and the notifications of a deployment', async () => {
    const added = await user.run(['channels', 'add', 'slack', `${receiver.url}/services/T1/B1/tokensecret99`])
    assert.equal(added.code, 0, added.stderr)
    const listed = await user.run(['channels', 'ls'])
    assert.match(listed.stdout, new RegExp(`slack\\s+127.0.0.1:${receiver.port}/…et99\\s+all\\s+on`))
    assert.ok(!listed.stdout.includes('tokensecret99'))

    const deployed = await user.run(['deploy', '--name', 'told', '--image', 'busybox:1.36'])
    assert.equal(deployed.code, 0, deployed.stderr)
    const shown = await waitFor('the running notification', async () => {
      const out = (await user.run(['notifications', '--unread', '--mark-read'])).stdout
      return out.includes('Deployment "told" is running') && out
    })
    assert.match(shown, /^\d+ unread\n/)
    assert.equal((await user.run(['notifications', '--unread'])).stdout, 'no notifications\n')
    await waitFor('the Slack message', () =>
      receiver.received.find((r) => r.path.startsWith('/services/T1') && r.body.includes('told')),
    )
  })
})
