import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { auditOf } from './helpers/audit.ts'
import { databaseKinds, openTestDatabase, type TestDatabase } from './helpers/db.ts'
import { createTestApp, type TestApp } from './helpers/http-app.ts'
import { type Mail, startSmtp } from './helpers/smtp-receiver.ts'
import { createStack, type Stack } from './helpers/stack.ts'
import { waitFor } from './helpers/wait.ts'
import { type Receiver, startReceiver } from './helpers/webhook-receiver.ts'

// Channels as people receive them: email through a real SMTP server (the address confirmed with
// the code it was sent first), and Slack, Discord and Telegram messages in each one's format at
// local receivers; short, human, with a link to the deployment, and only the types chosen.

const wallet = (n: number) => `0x${n.toString(16).padStart(2, '0').repeat(20)}`
const PUBLIC_URL = 'https://berth.example'

for (const kind of databaseKinds) {
  describe(`notification channels (${kind})`, () => {
    let database: TestDatabase
    let stack: Stack
    let app: TestApp
    let smtp: Awaited<ReturnType<typeof startSmtp>>
    let chat: Receiver

    before(async () => {
      database = await openTestDatabase(kind)
      smtp = await startSmtp()
      chat = await startReceiver()
      stack = await createStack(database, {
        flags: {
          publicUrl: PUBLIC_URL,
          outbound: { allow: ['127.0.0.1/32'] },
          notifications: {
            retryDelaysSeconds: [0.05],
            telegramApiUrl: chat.url,
            smtp: { host: '127.0.0.1', port: smtp.port, from: 'berth <alerts@berth.example>' },
          },
        },
      })
      app = await createTestApp(database, stack)
    })
    after(async () => {
      await stack.stop()
      await chat.stop()
      await smtp.stop()
      await database.dispose()
    })

    const mailTo = (to: string, subject: RegExp) =>
      waitFor(`mail to ${to}`, () =>
        smtp.mails.find((m: Mail) => m.to.includes(to) && subject.test(m.subject)),
      )

    it('emails a confirmed address the events it chose, with a link to the deployment', async () => {
      const call = await app.user(wallet(1))
      const to = 'ops@team.example'
      const made = await call('POST', '/v1/notification-channels', {
        kind: 'email',
        to,
        eventTypes: ['deployment.running'],
      })
      assert.equal(made.status, 201, JSON.stringify(made.body))
      assert.equal(made.body.verified, false)
      const confirm = await mailTo(to, /Confirm this address/)
      assert.equal(confirm.from, 'alerts@berth.example')
      const code = /code is ([A-Z0-9]{8})/.exec(confirm.body)?.[1]
      assert.ok(code, confirm.body)

      // Nothing is sent to an address that has not confirmed it wants it.
      const early = await call('POST', '/v1/deployments', { name: 'early', image: 'app:1' })
      // Published (its in-app notification is written in the same transaction as the deliveries)
      // before the address is confirmed: a mail for it now would go to an unconfirmed address.
      await waitFor('early running, published', async () =>
        (await call('GET', '/v1/notifications')).body.items.some(
          (n: { type: string; deploymentId: string }) =>
            n.type === 'deployment.running' && n.deploymentId === early.body.id,
        ),
      )
      const wrong = await call('POST', `/v1/notification-channels/${made.body.id}/verify`, {
        code: 'AAAAAAAA',
      })
      assert.equal(wrong.status, 400)
      const right = await call('POST', `/v1/notification-channels/${made.body.id}/verify`, { code })
      assert.equal(right.status, 200)
      assert.equal(right.body.verified, true)
      assert.equal(
        (await auditOf(database, (await call('GET', '/v1/auth/me')).body.accountId)).at(-1)?.action,
        'channel.verify',
      )

      const created = await call('POST', '/v1/deployments', { name: 'web', image: 'app:1' })
      const mail = await mailTo(to, /is running/)
      assert.equal(mail.subject, 'Deployment "web" is running')
      assert.match(mail.body, new RegExp(`${PUBLIC_URL}/deployments/${created.body.id}`))
      assert.match(mail.body, /Event: deployment\.running \(evt_[0-9a-f]{32}\)/)
      assert.ok(
        !smtp.mails.some((m) => m.subject.includes('"early"')),
        'no mail before the address was confirmed',
      )
      await call('POST', `/v1/deployments/${created.body.id}/stop`)
      await waitFor(
        'stopped',
        async () => (await call('GET', `/v1/deployments/${created.body.id}`)).body.status === 'stopped',
      )
      assert.ok(!smtp.mails.some((m) => m.subject.includes('stopped')), 'deployment.stopped was not chosen')
    })

    it('posts Slack, Discord and Telegram messages in their formats, showing no token in lists', async () => {
      const call = await app.user(wallet(2))
      const slack = await call('POST', '/v1/notification-channels', {
        kind: 'slack',
        url: `${chat.url}/services/T000/B000/slacksecret0001`,
      })
      const discord = await call('POST', '/v1/notification-channels', {
        kind: 'discord',
        url: `${chat.url}/api/webhooks/1/discordsecret0002`,
      })
      const telegram = await call('POST', '/v1/notification-channels', {
        kind: 'telegram',
        botToken: '123456:telegram-secret-token-0003',
        chatId: '-1001234',
      })
      for (const made of [slack, discord, telegram]) assert.equal(made.status, 201, JSON.stringify(made.body))
      const listed = JSON.stringify((await call('GET', '/v1/notification-channels')).body)
      for (const secret of ['slacksecret0001', 'discordsecret0002', 'telegram-secret-token-0003']) {
        assert.ok(!listed.includes(secret), `${secret} is not listed`)
      }
      assert.equal(slack.body.shown, `127.0.0.1:${chat.port}/…0001`)

      const created = await call('POST', '/v1/deployments', { name: 'agent', image: 'app:1' })
      const link = `${PUBLIC_URL}/deployments/${created.body.id}`
      const at = (path: string) =>
        waitFor(path, () => chat.received.find((r) => r.path.startsWith(path) && r.body.includes('running')))
      const slackMessage = JSON.parse((await at('/services/T000')).body)
      assert.deepEqual(slackMessage, { text: `Deployment "agent" is running\n<${link}|Open the deployment>` })
      const discordMessage = JSON.parse((await at('/api/webhooks/1')).body)
      assert.deepEqual(discordMessage, {
        content: `Deployment "agent" is running\n${link}`,
        allowed_mentions: { parse: [] },
      })
      const telegramRequest = await at('/bot123456:telegram-secret-token-0003/sendMessage')
      assert.deepEqual(JSON.parse(telegramRequest.body), {
        chat_id: '-1001234',
        text: `Deployment "agent" is running\n${link}`,
        disable_web_page_preview: true,
      })
    })

    it('mails one address three confirmations a day whoever asks, and one owner ten', async () => {
      const stranger = 'someone@elsewhere.example'
      const channel = (to: string) => ({ kind: 'email', to })
      const first = await app.user(wallet(4))
      const second = await app.user(wallet(5))
      for (const call of [first, first, second]) {
        const made = await call('POST', '/v1/notification-channels', channel(stranger))
        assert.equal(made.status, 201, JSON.stringify(made.body))
        assert.equal((await call('DELETE', `/v1/notification-channels/${made.body.id}`)).status, 204)
      }
      const tagged = stranger.replace('@', '+again@').toUpperCase()
      const fourth = await second('POST', '/v1/notification-channels', channel(tagged))
      assert.equal(fourth.status, 429, 'the same address, written otherwise')
      assert.match(fourth.body.error.message, /3 a day per address/)
      const toStranger = () => smtp.mails.filter((m) => m.to.includes(stranger)).length
      await waitFor('three confirmations', () => toStranger() === 3)

      const busy = await app.user(wallet(6))
      for (let i = 0; i < 10; i++) {
        const made = await busy('POST', '/v1/notification-channels', channel(`ops${i}@team.example`))
        assert.equal(made.status, 201, `confirmation ${i + 1}`)
      }
      const eleventh = await busy('POST', '/v1/notification-channels', channel('ops10@team.example'))
      assert.equal(eleventh.status, 429)
      assert.match(eleventh.body.error.message, /10 a day per owner/)
      assert.equal(toStranger(), 3, 'no fourth mail to the stranger')
    })

    it('refuses channels it could never send to, naming the field', async () => {
      const call = await app.user(wallet(3))
      for (const [body, field] of [
        [{ kind: 'email', to: 'not-an-address' }, /to/],
        [{ kind: 'telegram', botToken: 'nope', chatId: '1' }, /botToken/],
        [{ kind: 'slack', url: 'http://10.1.2.3/hook' }, /not a public address/],
        [{ kind: 'pager', url: 'https://x.example' }, /kind/],
        [{ kind: 'discord', url: 'https://x.example', eventTypes: ['deployment.exploded'] }, /eventTypes/],
      ] as const) {
        const refused = await call('POST', '/v1/notification-channels', body)
        assert.equal(refused.status, 400, JSON.stringify(body))
        assert.match(JSON.stringify(refused.body.error), field)
      }
    })
  })
}
