import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { ApiError, createHttpClient } from './http-client.ts'
import { followSse, type SseMessage, SseParser } from './sse.ts'

describe('SSE parser', () => {
  it('parses messages split anywhere, with any line ending', () => {
    const stream =
      ': keepalive\r\nid: 1\r\nevent: deployment\r\ndata: {"seq":1}\r\n\r\nid: 2\nevent: deployment\ndata: a\ndata: b\n\nretry: 1500\rdata:c\r\r'
    // Every split point, so CRLF and fields torn across chunks are covered.
    for (let cut = 0; cut <= stream.length; cut++) {
      const parser = new SseParser()
      const messages = [...parser.push(stream.slice(0, cut)), ...parser.push(stream.slice(cut))]
      assert.deepEqual(
        messages,
        [
          { id: '1', event: 'deployment', data: '{"seq":1}' },
          { id: '2', event: 'deployment', data: 'a\nb' },
          { id: '2', event: 'message', data: 'c' },
        ],
        `cut at ${cut}`,
      )
      assert.equal(parser.retryMs, 1500)
      assert.equal(parser.lastEventId, '2')
    }
  })

  it('ignores comments, unknown fields and blocks without data; drops an unfinished message', () => {
    const parser = new SseParser('7')
    assert.deepEqual(parser.push(': hello\n\nevent: x\n\nfoo: bar\nid\n\ndata: tail'), [])
    assert.equal(parser.lastEventId, '', 'a bare `id` resets the last id')
    assert.deepEqual(parser.push('\n\n'), [{ id: '', event: 'message', data: 'tail' }])
    assert.deepEqual(new SseParser().push('data\n\n'), [{ id: undefined, event: 'message', data: '' }])
  })
})

type Handler = (req: IncomingMessage, res: ServerResponse, attempt: number) => void

describe('followSse', () => {
  let server: Server
  let handler: Handler = () => {}
  let attempts: IncomingMessage[] = []
  let base = ''

  before(async () => {
    server = createServer((req, res) => {
      attempts.push(req)
      handler(req, res, attempts.length)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  const follow = (options: { idleTimeoutMs?: number; maxAttempts?: number; signal?: AbortSignal } = {}) => {
    attempts = []
    const client = createHttpClient({ server: base })
    return followSse({
      ...options,
      delay: async () => {},
      open: (lastEventId, signal) =>
        client.open('/events', { headers: lastEventId ? { 'last-event-id': lastEventId } : {}, signal }),
    })
  }
  const sse = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream' })
  const take = async (stream: AsyncGenerator<SseMessage>, n: number) => {
    const out: SseMessage[] = []
    for await (const message of stream) {
      out.push(message)
      if (out.length === n) break
    }
    return out
  }

  it('reconnects after the server closes, resuming with Last-Event-ID', async () => {
    handler = (req, res, attempt) => {
      sse(res)
      if (attempt === 1) res.end('id: 1\ndata: one\n\nid: 2\ndata: two\n\n')
      else res.write(`id: 3\ndata: three after ${req.headers['last-event-id']}\n\n`)
    }
    const messages = await take(follow(), 3)
    assert.deepEqual(
      messages.map((m) => m.data),
      ['one', 'two', 'three after 2'],
    )
    assert.equal(attempts.length, 2)
  })

  it('retries server errors but not client errors', async () => {
    handler = (_req, res, attempt) => {
      if (attempt < 3) {
        res.writeHead(503, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: { code: 'provider_unavailable', message: 'busy', requestId: 'r' } }))
        return
      }
      sse(res)
      res.write('data: finally\n\n')
    }
    assert.deepEqual(
      (await take(follow(), 1)).map((m) => m.data),
      ['finally'],
    )
    assert.equal(attempts.length, 3)

    handler = (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({ error: { code: 'not_found', message: 'deployment not found', requestId: 'r' } }),
      )
    }
    await assert.rejects(
      take(follow(), 1),
      (error: unknown) => error instanceof ApiError && error.code === 'not_found',
    )
    assert.equal(attempts.length, 1)
  })

  it('gives up after maxAttempts connections that bring nothing', async () => {
    handler = (_req, res) => {
      res.writeHead(500)
      res.end()
    }
    await assert.rejects(take(follow({ maxAttempts: 3 }), 1), (error: unknown) => error instanceof ApiError)
    assert.equal(attempts.length, 3)
  })

  it('takes a silent connection for dead and reconnects', async () => {
    handler = (_req, res, attempt) => {
      sse(res)
      if (attempt === 1)
        res.write('id: 5\n\n') // headers and an id, then silence
      else res.write(`data: resumed after ${_req.headers['last-event-id']}\n\n`)
    }
    assert.deepEqual(
      (await take(follow({ idleTimeoutMs: 1000 }), 1)).map((m) => m.data),
      ['resumed after 5'],
    )
    assert.equal(attempts.length, 2)
  })

  it('stops when the caller aborts', async () => {
    handler = (_req, res) => {
      sse(res)
      res.write('data: first\n\n')
    }
    const controller = new AbortController()
    const stream = follow({ signal: controller.signal })
    const first = await stream.next()
    assert.equal(first.value?.data, 'first')
    const pending = stream.next()
    controller.abort(new Error('enough'))
    await assert.rejects(pending, /enough/)
  })

  it('ends when the server answers 204', async () => {
    handler = (_req, res) => {
      res.writeHead(204)
      res.end()
    }
    assert.deepEqual(await take(follow(), 1), [])
  })
})
