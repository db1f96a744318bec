import type Docker from 'dockerode'
import { DeadlineError, withDeadline } from '../../domain/delay.ts'
import { LogDecoder } from './logs.ts'

// A command run in a running container through the engine's exec API: an argument vector, never
// a shell string. What it prints is kept up to a bound (a tenant's program may print without end),
// and a command that does not finish in time is reported as such (exit code -1), not waited on.

const OUTPUT_LIMIT = 4096

export interface ExecResult {
  /** -1 when the command did not finish in time: it may still be running, its outcome unknown. */
  exitCode: number
  output: string
}

export async function execInContainer(
  container: Docker.Container,
  command: string[],
  timeoutMs = 30_000,
): Promise<ExecResult> {
  const execution = await container.exec({ Cmd: command, AttachStdout: true, AttachStderr: true })
  const stream = await execution.start({ hijack: true, stdin: false })
  const decoder = new LogDecoder()
  let output = ''
  const keep = (text: string) => {
    output = `${output}${output ? '\n' : ''}${text}`.slice(-OUTPUT_LIMIT)
  }
  const read = (async () => {
    for await (const chunk of stream) for (const line of decoder.push(chunk as Buffer)) keep(line.text)
    for (const line of decoder.end()) keep(line.text)
  })()
  // Destroying the stream on a timeout ends the read with an error nobody waits for any more.
  read.catch(() => {})
  try {
    await withDeadline(read, timeoutMs)
  } catch (error) {
    if (!(error instanceof DeadlineError)) throw error
    ;(stream as unknown as { destroy?: () => void }).destroy?.()
    return { exitCode: -1, output: `${output}\n(did not finish within ${timeoutMs / 1000}s)`.trim() }
  }
  const { ExitCode } = await execution.inspect()
  return { exitCode: ExitCode ?? -1, output }
}
