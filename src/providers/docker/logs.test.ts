import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LogDecoder, mergeLines, parseLogLine } from './logs.ts'
import { usageOf } from './stats.ts'

const frame = (type: number, text: string) => {
  const payload = Buffer.from(text)
  const header = Buffer.alloc(8)
  header[0] = type
  header.writeUInt32BE(payload.length, 4)
  return Buffer.concat([header, payload])
}

describe('docker log frames', () => {
  it('demuxes stdout and stderr and splits off the timestamps', () => {
    const decoder = new LogDecoder()
    const lines = decoder.push(
      Buffer.concat([
        frame(1, '2026-01-02T03:04:05.123456789Z hello\n'),
        frame(2, '2026-01-02T03:04:06.5Z oops\n'),
      ]),
    )
    assert.deepEqual(lines, [
      { at: new Date('2026-01-02T03:04:05.123Z'), stream: 'stdout', text: 'hello' },
      { at: new Date('2026-01-02T03:04:06.500Z'), stream: 'stderr', text: 'oops' },
    ])
  })

  it('reassembles frames split across chunks and lines split across frames', () => {
    const decoder = new LogDecoder()
    const bytes = Buffer.concat([
      frame(1, '2026-01-02T03:04:05Z par'),
      frame(1, 'tial\n'),
      frame(1, 'no newline'),
    ])
    const lines = [...decoder.push(bytes.subarray(0, 5)), ...decoder.push(bytes.subarray(5, 30))]
    lines.push(...decoder.push(bytes.subarray(30)), ...decoder.end())
    assert.deepEqual(
      lines.map((l) => l.text),
      ['partial', 'no newline'],
    )
  })

  it('dates a line without a timestamp now', () => {
    const before = Date.now()
    const line = parseLogLine('stdout', 'plain\r')
    assert.equal(line.text, 'plain')
    assert.ok(line.at.getTime() >= before)
  })

  it('merges several sources', async () => {
    async function* source(texts: string[]) {
      for (const text of texts) yield parseLogLine('stdout', text)
    }
    const merged: string[] = []
    for await (const line of mergeLines([source(['a1', 'a2']), source(['b1'])])) merged.push(line.text)
    assert.deepEqual(merged.sort(), ['a1', 'a2', 'b1'])
  })
})

describe('docker stats', () => {
  it('computes CPU percent, memory without page cache, and network totals', () => {
    const usage = usageOf({
      cpu_stats: { cpu_usage: { total_usage: 300 }, system_cpu_usage: 2000, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 100 }, system_cpu_usage: 1000 },
      memory_stats: { usage: 5000, stats: { total_inactive_file: 1000 } },
      networks: { eth0: { rx_bytes: 10, tx_bytes: 20 }, eth1: { rx_bytes: 1, tx_bytes: 2 } },
    })
    assert.deepEqual(usage, { cpuPercent: 40, memoryBytes: 4000, networkRxBytes: 11, networkTxBytes: 22 })
  })

  it('reads an empty sample (a container that just stopped) as zero', () => {
    assert.deepEqual(usageOf({}), { cpuPercent: 0, memoryBytes: 0, networkRxBytes: 0, networkTxBytes: 0 })
  })
})
