import type Docker from 'dockerode'
import { LogDecoder } from '../../src/providers/docker/logs.ts'

/** Runs a command in a container through the API; returns its exit code and output. */
export async function exec(
  container: Docker.Container,
  cmd: string[],
): Promise<{ exitCode: number; output: string }> {
  const execution = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true })
  const stream = await execution.start({ hijack: true, stdin: false })
  const decoder = new LogDecoder()
  const lines: string[] = []
  for await (const chunk of stream) for (const line of decoder.push(chunk as Buffer)) lines.push(line.text)
  for (const line of decoder.end()) lines.push(line.text)
  const { ExitCode } = await execution.inspect()
  return { exitCode: ExitCode ?? -1, output: lines.join('\n') }
}
