import assert from 'node:assert/strict'
import type { OrgRole } from '../../src/domain/roles.ts'
import type { Caller } from './http-app.ts'

/** The owner makes an organisation and adds members by address (they need not have signed in). */
export async function createOrg(
  owner: Caller,
  org: { name: string; slug: string },
  members: ReadonlyArray<readonly [address: string, role: OrgRole]> = [],
): Promise<void> {
  const created = await owner('POST', '/v1/orgs', org)
  assert.equal(created.status, 201, JSON.stringify(created.body))
  assert.equal(created.body.role, 'owner')
  for (const [address, role] of members) {
    const added = await owner('POST', `/v1/orgs/${org.slug}/members`, { address, role })
    assert.equal(added.status, 201, JSON.stringify(added.body))
  }
}
