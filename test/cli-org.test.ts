import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { children, createUser } from './helpers/cli-user.ts'
import { type RunningBerth, startBerth } from './helpers/server.ts'

// `berth org …` and `--org`, as a team would use them: one wallet makes an organisation and adds
// another by address; both then deploy and see the organisation's deployments, apart from their own.

describe('berth CLI with organisations (e2e)', { timeout: 180_000 }, () => {
  let server: RunningBerth
  const ownerKey = generatePrivateKey()
  const mateKey = generatePrivateKey()
  const owner = createUser({ BERTH_PRIVATE_KEY: ownerKey })
  const mate = createUser({ BERTH_PRIVATE_KEY: mateKey })

  before(async () => {
    server = await startBerth()
    for (const user of [owner, mate]) {
      const login = await user.run(['login', '--server', server.url])
      assert.equal(login.code, 0, login.stderr)
    }
  })
  after(async () => {
    for (const child of children) child.kill('SIGKILL')
    await server?.stop()
  })

  it('creates an organisation, adds a member by address, and acts for it with --org and org use', async () => {
    const created = await owner.run(['org', 'create', 'team', '--name', 'The Team'])
    assert.equal(created.code, 0, created.stderr)
    assert.match(created.stdout, /created team .*you are its owner/)
    const mateAddress = privateKeyToAccount(mateKey).address
    const added = await owner.run(['org', 'add', mateAddress, '--role', 'deployer', '--org', 'team'])
    assert.equal(added.code, 0, added.stderr)

    const used = await mate.run(['org', 'use', 'team'])
    assert.equal(used.code, 0, used.stderr)
    assert.equal(used.stdout, 'acting for team as deployer\n')
    const deployed = await mate.run(['deploy', '--name', 'shared', '--image', 'busybox:1.36', '--json'])
    assert.equal(deployed.code, 0, deployed.stderr)
    assert.equal(JSON.parse(deployed.stdout).owner, 'org:team')

    const listed = await owner.run(['ls', '--org', 'team', '--json'])
    assert.deepEqual(
      JSON.parse(listed.stdout).items.map((d: { name: string }) => d.name),
      ['shared'],
    )
    const own = await owner.run(['ls', '--json'])
    assert.deepEqual(JSON.parse(own.stdout).items, [], 'the owner’s own account has none')

    const orgs = await mate.run(['org', 'ls'])
    assert.match(orgs.stdout, /^\*\s+team\s+The Team\s+deployer$/m)
    const members = await mate.run(['org', 'members'])
    assert.match(members.stdout, new RegExp(`${mateAddress.toLowerCase()}\\s+deployer`))

    // A deployer cannot add members: exit 4, naming the roles that can.
    const refused = await mate.run(['org', 'add', `0x${'12'.repeat(20)}`, '--role', 'viewer'])
    assert.equal(refused.code, 4)
    assert.match(refused.stderr, /admin or owner role in team/)

    const personal = await mate.run(['org', 'use', '--personal'])
    assert.equal(personal.stdout, 'acting for your own account\n')
    assert.deepEqual(JSON.parse((await mate.run(['ls', '--json'])).stdout).items, [])
  })

  it('shows the audit log, checks its chain, changes roles, removes members and deletes the organisation', async () => {
    const mateAddress = privateKeyToAccount(mateKey).address.toLowerCase()
    const log = await owner.run(['audit', 'ls', '--org', 'team'])
    assert.equal(log.code, 0, log.stderr)
    // Newest first: the mate's refused attempt to add a member, then its deploy, from this
    // machine, as the mate's wallet (a session).
    const [, refusedAdd, deploy] = log.stdout.split('\n')
    const byMate = `account:${mateAddress}\\s+`
    assert.match(
      refusedAdd!,
      new RegExp(
        `${byMate}POST /v1/orgs/\\{org\\}/members\\s+/v1/orgs/team/members\\s+denied\\s+127\\.0\\.0\\.1`,
      ),
    )
    assert.match(
      deploy!,
      new RegExp(`${byMate}deployment\\.create\\s+deployment:\\S+\\s+ok\\s+127\\.0\\.0\\.1`),
    )
    assert.match(log.stdout, /org\.create\s+org:team/)
    const verified = await owner.run(['audit', 'verify', '--org', 'team'])
    assert.equal(verified.code, 0, verified.stderr)
    assert.match(verified.stdout, /^the audit log is intact: \d+ entries/)
    // Only admins and owners read it.
    assert.equal((await mate.run(['audit', 'ls', '--org', 'team'])).code, 4)

    const demoted = await owner.run(['org', 'role', mateAddress, 'viewer', '--org', 'team'])
    assert.equal(demoted.code, 0, demoted.stderr)
    assert.equal(demoted.stdout, `${mateAddress} is now viewer of team\n`)
    assert.equal((await mate.run(['rm', 'shared', '--org', 'team'])).code, 4)
    const removed = await owner.run(['org', 'remove', mateAddress, '--org', 'team'])
    assert.equal(removed.code, 0, removed.stderr)
    assert.match((await mate.run(['org', 'ls'])).stdout, /^no organisations/)

    // Not while it still has a deployment; then gone for everyone.
    const refused = await owner.run(['org', 'delete', 'team'])
    assert.equal(refused.code, 3)
    assert.match(refused.stderr, /still has 1 deployment/)
    assert.equal((await owner.run(['rm', 'shared', '--org', 'team'])).code, 0)
    const deleted = await owner.run(['org', 'delete', 'team'])
    assert.equal(deleted.code, 0, deleted.stderr)
    assert.equal((await owner.run(['org', 'members', 'team'])).code, 3)
  })
})
