import { createHash, randomInt, timingSafeEqual } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { queryRows, type Tx } from '../db/client.ts'
import { BerthError } from '../domain/errors.ts'

// Confirming an email channel's address before anything is sent to it. Each confirmation mail is
// counted, per owner and per address, so that creating email channels (wallets cost nothing to
// make) cannot become a way to send mail to strangers.

/** Wrong codes accepted before the channel must be made again. */
export const VERIFY_ATTEMPTS = 5
/** Confirmation mails one owner may have sent in a day. */
export const SENDS_PER_OWNER_PER_DAY = 10
/** Confirmation mails one address receives in a day, whoever asks. */
export const SENDS_PER_ADDRESS_PER_DAY = 3

export const codeDigest = (code: string) => createHash('sha256').update(code).digest('hex')
/** One digest for an address however it is written: case, and a `+tag` (victim+1@…, victim+2@…). */
function addressDigest(address: string): string {
  const [local = '', domain = ''] = address
    .trim()
    .toLowerCase()
    .split(/@(?=[^@]*$)/)
  return createHash('sha256')
    .update(`${local.split('+')[0]}@${domain}`)
    .digest('hex')
}

/** Eight characters people copy without confusing them (no 0/O, 1/I). */
export const verificationCode = () =>
  Array.from({ length: 8 }, () => 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'[randomInt(32)]).join('')

/** Whether `given` is the code whose digest was kept, compared in constant time. */
export function codeMatches(given: string, keptDigest: string): boolean {
  const digest = Buffer.from(codeDigest(given.trim().toUpperCase()))
  return digest.length === keptDigest.length && timingSafeEqual(digest, Buffer.from(keptDigest))
}

/**
 * Counts a confirmation mail about to be sent, or refuses it (429) when the owner or the address
 * had their day's share. Called under the owner's row lock, so one owner's requests count in turn.
 */
export async function countVerificationSend(tx: Tx, ownerId: string, address: string): Promise<void> {
  const digest = addressDigest(address)
  // Different owners may ask for one address at once: they count in turn too.
  await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${digest}, 0))`)
  const [counts] = await queryRows<{ by_owner: number; by_address: number }>(
    tx,
    sql`select
          (select count(*)::int from notify_verification_sends
            where owner_id = ${ownerId} and sent_at > now() - interval '1 day') as by_owner,
          (select count(*)::int from notify_verification_sends
            where address_digest = ${digest} and sent_at > now() - interval '1 day') as by_address`,
  )
  const byOwner = counts?.by_owner ?? 0
  const byAddress = counts?.by_address ?? 0
  if (byOwner >= SENDS_PER_OWNER_PER_DAY || byAddress >= SENDS_PER_ADDRESS_PER_DAY) {
    // One answer for both: it must not tell a stranger that someone else asked for this address.
    throw new BerthError(
      'rate_limited',
      `confirmation emails are limited to ${SENDS_PER_OWNER_PER_DAY} a day per owner and ${SENDS_PER_ADDRESS_PER_DAY} a day per address; try again tomorrow`,
    )
  }
  await tx.execute(
    sql`insert into notify_verification_sends (owner_id, address_digest) values (${ownerId}, ${digest})`,
  )
}
