import { api, type RunningBerth, signIn } from '../test/helpers/server.ts'
import { leanClient } from './lean-client.ts'

// What acting for an organisation costs: creates accepted per second by one wallet for itself
// and, on the same server in the same run, for an organisation it is a deployer of (each request
// then looks up the membership and checks the role's scope). Rounds alternate, so that drift
// (a growing table, a warming cache) falls on both sides alike; the medians are compared.

const ROUNDS = 10
const PER_ROUND = 500
const CONCURRENCY = 32

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export async function orgOverhead(label: string, server: RunningBerth): Promise<void> {
  const owner = await signIn(server.url)
  const member = await signIn(server.url)
  const slug = `bench-${Date.now().toString(36)}`
  const made = await api(server.url, owner.token).post<{ id: string }>('/v1/orgs', { name: 'Bench', slug })
  if (made.status !== 201) throw new Error(`create org: ${made.status} ${JSON.stringify(made.body)}`)
  const added = await api(server.url, owner.token).post(`/v1/orgs/${slug}/members`, {
    address: member.address,
    role: 'deployer',
  })
  if (added.status !== 201) throw new Error(`add member: ${added.status} ${JSON.stringify(added.body)}`)

  const rates = { personal: [] as number[], org: [] as number[] }
  let n = 0
  for (let round = 0; round < ROUNDS; round++) {
    // Each side goes first in every other round, so neither always meets the larger tables.
    const sides = round % 2 === 0 ? (['personal', 'org'] as const) : (['org', 'personal'] as const)
    for (const side of sides) {
      // Fresh sockets each round: ones left idle through the other side's round may be closed by
      // the server's keep-alive timeout just as they are reused.
      const client = leanClient(
        server.url,
        member.token,
        CONCURRENCY,
        side === 'org' ? { 'berth-org': slug } : {},
      )
      let left = PER_ROUND
      const started = performance.now()
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (left > 0) {
            left--
            const i = n++
            const response = await client.call('POST', '/v1/deployments', {
              name: `auth-${i}`,
              image: 'example/app:1',
            })
            if (response.status !== 202)
              throw new Error(`create ${i}: ${response.status} ${JSON.stringify(response.body)}`)
          }
        }),
      )
      rates[side].push(PER_ROUND / ((performance.now() - started) / 1000))
      client.close()
    }
  }
  const mine = median(rates.personal)
  const theirs = median(rates.org)
  console.log(
    `\n${label}: acting for an organisation (${ROUNDS} alternating rounds of ${PER_ROUND} creates each)`,
  )
  console.log(
    `  for oneself           ${mine.toFixed(0)} creates/s (median; rounds ${rates.personal.map((r) => r.toFixed(0)).join(' ')})`,
  )
  console.log(
    `  for the organisation  ${theirs.toFixed(0)} creates/s (median; rounds ${rates.org.map((r) => r.toFixed(0)).join(' ')})`,
  )
  // Each round's pair compared on its own too: steadier where the rate drifts (PGlite, whose
  // rounds share one thread with the reconciler starting what the earlier rounds created).
  const paired = median(rates.org.map((rate, i) => rate / rates.personal[i]!))
  console.log(
    `  ratio ${(theirs / mine).toFixed(3)} of medians, ${paired.toFixed(3)} median of the rounds' ratios   (goal ≥ 0.95: the role check costs at most 5%)`,
  )
}
