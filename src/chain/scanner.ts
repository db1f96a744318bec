import type { Logger } from 'pino'
import type { PublicClient } from 'viem'
import type { Db } from '../db/client.ts'
import { backoffDelayMs } from '../domain/backoff.ts'
import { BerthError } from '../domain/errors.ts'
import type { Metrics } from '../metrics/registry.ts'
import { type Cursor, type CursorStore, createCursorStore } from './cursor-store.ts'
import { type ChainReader, createChainReader } from './reader.ts'
import { readAgreed } from './rpc.ts'
import type { ChainConsumer } from './types.ts'

// Follows one network for one consumer and hands it each confirmed block range exactly once.
//
// A pass (tick): check that the cursor block is still canonical (else walk back to the newest kept
// position that is, and rewind with the consumer's onReorg in one transaction); then, range by
// range up to head − confirmations, read the logs (and direct value transfers), check that the
// chain did not change under the reads, and apply the range with the consumer's onConfirmed in the
// transaction that moves the cursor. Nothing moves the cursor except a committed transaction, so a
// failure anywhere leaves it where it was and the next pass starts from there.
//
// Only direct transfers (a transaction's own value) are seen as native transfers; value sent by a
// contract during execution (internal transfers) needs tracing, which this does not do.

export interface ChainScannerOptions {
  chainId: number
  /** Network name for metrics and logs; the chain id when absent. */
  network?: string
  /** One client per configured RPC endpoint; every read must be agreed by all (see readAgreed). */
  clients: PublicClient[]
  /** Blocks a block must be buried under before it is delivered, or the node's `finalized` tag. */
  confirmations: number | 'finalized'
  pollIntervalMs: number
  /** The most blocks read (and applied) at once; halved while the node refuses such ranges. */
  maxBlockRange: number
  /** Where a consumer without a cursor starts: a block number, or the confirmed head (default). */
  startBlock?: bigint | 'latest'
  consumer: ChainConsumer
  db: Db
  metrics?: Pick<Metrics, 'chainCursorLag'>
  logger?: Logger
  /** Cap of the retry delay after failed passes. */
  backoffMaxMs?: number
  /** Cursor positions kept for walking back after a reorg. */
  keepBlocks?: number
  /** Work to do after every pass, outside its transactions (payments: crediting what is now deep enough). */
  afterPass?: (result: TickResult) => Promise<void>
}

export interface TickResult {
  head: bigint
  /** The newest block deliverable this pass. */
  confirmed: bigint
  cursor: bigint
  blocksApplied: bigint
  /** Set when this pass rewound after a reorg deeper than the confirmations: the ancestor kept. */
  rewoundTo?: bigint
}

/** The chain reorganised deeper than every kept position: someone has to look at it. */
export class ReorgTooDeepError extends BerthError {
  constructor(chainId: number, consumer: string, cursor: bigint) {
    super(
      'internal',
      `chain ${chainId}: no kept block of consumer ${consumer} at or below ${cursor} is still canonical`,
    )
    this.name = 'ReorgTooDeepError'
  }
}

/** Successful ranges after which a range cut down by a refusing node is tried twice as wide again. */
const GROW_AFTER = 16

export class ChainScanner {
  readonly consumer: ChainConsumer
  private readonly options: ChainScannerOptions
  private readonly reader: ChainReader
  private readonly store: CursorStore
  private readonly network: string
  private range: number
  private rangeSuccesses = 0
  private lastLag: bigint | undefined
  private serial: Promise<unknown> = Promise.resolve()
  private loop: Promise<void> | undefined
  private stopping = false
  private wakeUp: (() => void) | undefined
  private chainIdChecked = false
  private pendingWake = false

  constructor(options: ChainScannerOptions) {
    if (options.maxBlockRange < 1) throw new Error('maxBlockRange must be at least 1')
    this.options = options
    this.consumer = options.consumer
    this.network = options.network ?? String(options.chainId)
    this.reader = createChainReader(options.clients)
    this.store = createCursorStore(options.db, options.chainId, options.consumer.name, options.keepBlocks)
    this.range = options.maxBlockRange
  }

  /** head − cursor after the last pass (undefined before the first). */
  get lag(): bigint | undefined {
    return this.lastLag
  }

  /** One pass up to the confirmed head. Passes never overlap, whoever calls. */
  tick(): Promise<TickResult> {
    const run = this.serial.then(async () => {
      const result = await this.pass()
      await this.options.afterPass?.(result)
      return result
    })
    this.serial = run.catch(() => {})
    return run
  }

  /** Runs passes every pollIntervalMs (sooner when woken), backing off after failures. */
  start(): void {
    if (this.loop) return
    this.stopping = false
    this.loop = this.run()
  }

  /** Lets the current range finish, then ends the loop. */
  async stop(): Promise<void> {
    this.stopping = true
    this.wakeUp?.()
    await this.loop
    this.loop = undefined
  }

  /** Starts the next pass now, e.g. when a new order makes a new filter. */
  wake(): void {
    // Woken mid-pass, the loop goes straight into another pass instead of sleeping.
    this.pendingWake = true
    this.wakeUp?.()
  }

  private async run(): Promise<void> {
    let failures = 0
    while (!this.stopping) {
      let delay = this.options.pollIntervalMs
      try {
        await this.tick()
        failures = 0
      } catch (error) {
        failures++
        delay = backoffDelayMs(failures - 1, {
          baseMs: this.options.pollIntervalMs,
          maxMs: this.options.backoffMaxMs ?? 60_000,
        })
        this.options.logger?.warn(
          { err: error, network: this.network, consumer: this.consumer.name, retryInMs: delay },
          'chain scan failed',
        )
      }
      if (this.stopping) break
      if (this.pendingWake && failures === 0) delay = 0
      this.pendingWake = false
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay)
        this.wakeUp = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.wakeUp = undefined
    }
  }

  private async pass(): Promise<TickResult> {
    const { reader, store, consumer } = this
    if (!this.chainIdChecked) {
      // An endpoint of another chain would feed the cursor blocks that were never on this one.
      const chainId = await readAgreed(this.options.clients, (client) => client.getChainId())
      if (chainId !== this.options.chainId) {
        throw new Error(`the RPC endpoints serve chain ${chainId}, not ${this.options.chainId}`)
      }
      this.chainIdChecked = true
    }
    const head = await reader.head()
    const confirmed =
      this.options.confirmations === 'finalized'
        ? await reader.finalized()
        : head - BigInt(this.options.confirmations)
    let cursor = (await store.read()) ?? (await this.initCursor(confirmed))
    let rewoundTo: bigint | undefined

    if (!(await this.isCanonical(cursor))) {
      const ancestor = await this.findAncestor(cursor)
      const rewound = await store.rewind(cursor, ancestor, (tx) => consumer.onReorg(tx, ancestor.number + 1n))
      if (!rewound) return this.result(head, confirmed, (await store.read())!, 0n)
      this.options.logger?.warn(
        { network: this.network, consumer: consumer.name, from: cursor.number, to: ancestor.number },
        'chain reorganised below the confirmation depth: rewound',
      )
      cursor = ancestor
      rewoundTo = ancestor.number
    }

    let applied = 0n
    while (cursor.number < confirmed && !this.stopping) {
      const from = cursor.number + 1n
      const last = from + BigInt(this.range) - 1n
      const to = last < confirmed ? last : confirmed
      const toBlock = await reader.header(to)
      if (!toBlock) break
      const filters = consumer.filters()
      const { logs, split } = await reader.logs(filters.logs, from, to)
      const nativeTransfers = filters.nativeTo.length
        ? await reader.nativeTransfers(filters.nativeTo, from, to)
        : []
      // A reorg replacing any block of the range also replaces its last block, so if neither the
      // cursor block nor the last block changed while reading, what was read is one chain.
      const [cursorAfter, toAfter] = await Promise.all([this.isCanonical(cursor), reader.header(to)])
      if (!cursorAfter || toAfter?.hash !== toBlock.hash) break
      const batch = { from, to, logs, nativeTransfers, headBlock: head }
      const moved = await store.advance(cursor, toBlock, (tx) => consumer.onConfirmed(tx, batch))
      if (!moved) {
        // Another process applied this range first: carry on from where it got to.
        cursor = (await store.read())!
        break
      }
      cursor = { number: to, hash: toBlock.hash }
      applied += to - from + 1n
      this.adjustRange(split, Number(to - from + 1n))
    }
    return { ...this.result(head, confirmed, cursor, applied), rewoundTo }
  }

  private result(head: bigint, confirmed: bigint, cursor: Cursor, applied: bigint): TickResult {
    const lag = head > cursor.number ? head - cursor.number : 0n
    this.lastLag = lag
    this.options.metrics?.chainCursorLag.set(
      { network: this.network, consumer: this.consumer.name },
      Number(lag),
    )
    return { head, confirmed, cursor: cursor.number, blocksApplied: applied }
  }

  private async initCursor(confirmed: bigint): Promise<Cursor> {
    const start = this.options.startBlock ?? 'latest'
    const at = start === 'latest' ? (confirmed < -1n ? -1n : confirmed) : start - 1n
    // Before genesis, or a start block not mined yet: no hash to check against until it moves.
    const block = at >= 0n ? await this.reader.header(at) : null
    return this.store.init({ number: at, hash: block?.hash ?? null }, block?.parentHash ?? null)
  }

  private async isCanonical(cursor: Cursor): Promise<boolean> {
    if (cursor.hash === null) return true
    return (await this.reader.header(cursor.number))?.hash === cursor.hash
  }

  /** The newest kept position still on the canonical chain: every block up to it is too. */
  private async findAncestor(cursor: Cursor): Promise<Cursor> {
    for (const kept of await this.store.recent(cursor.number)) {
      if (kept.hash !== null && (await this.reader.header(kept.number))?.hash === kept.hash) return kept
    }
    throw new ReorgTooDeepError(this.options.chainId, this.consumer.name, cursor.number)
  }

  /** Narrower after a node refused a range, wider again after a run of ranges it served. */
  private adjustRange(split: boolean, size: number): void {
    if (split) {
      this.range = Math.max(1, Math.floor(size / 2))
      this.rangeSuccesses = 0
    } else if (this.range < this.options.maxBlockRange && ++this.rangeSuccesses >= GROW_AFTER) {
      this.range = Math.min(this.options.maxBlockRange, this.range * 2)
      this.rangeSuccesses = 0
    }
  }
}
