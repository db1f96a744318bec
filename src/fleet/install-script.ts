import { readFileSync } from 'node:fs'

// The agent's install script (deploy/install-agent.sh), as GET /v1/fleet/install.sh serves it: with
// this server's public URL and the operator's agent package as its defaults, so that
// `curl … | sh` needs nothing but a join token.

let script: string | undefined

/** Both values are the operator's own config; only characters a URL or package spec needs are kept. */
const shellSafe = (value: string) => value.replace(/[^A-Za-z0-9:/._~%?&=+@-]/g, '')

export function installScriptFor(publicUrl: string, agentPackage: string | undefined): string {
  script ??= readFileSync(new URL('../../deploy/install-agent.sh', import.meta.url), 'utf8')
  return script
    .replace('@BERTH_SERVER@', shellSafe(publicUrl))
    .replace('@BERTH_PACKAGE@', shellSafe(agentPackage ?? ''))
}
