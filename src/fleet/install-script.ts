import { readFileSync } from 'node:fs'

// The agent's install script (deploy/install-agent.sh), as GET /v1/fleet/install.sh serves it: with
// this server's public URL as the default server, so `curl … | sh` needs nothing else but a token.

let script: string | undefined

export function installScriptFor(publicUrl: string): string {
  script ??= readFileSync(new URL('../../deploy/install-agent.sh', import.meta.url), 'utf8')
  // The URL is berth's own config (a valid URL); quoting keeps the shell from reading it anyway.
  return script.replace('@BERTH_SERVER@', publicUrl.replace(/[^A-Za-z0-9:/._~%?&=+-]/g, ''))
}
