import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type AgentKeyPair, agentKeyFromPem, generateAgentKey, pemOf } from '../fleet/agent-key.ts'

// What an agent keeps in its data dir: its Ed25519 key (its identity: the same dir enrolls as the
// same node) and the node id the server gave it. The key file is readable by its owner only.

const KEY_FILE = 'agent-key.pem'
const NODE_FILE = 'node.json'

/** What the last enrollment with `server` answered: the node's id and how often to send heartbeats. */
export interface SavedNode {
  server: string
  nodeId: string
  heartbeatSeconds: number
}

export interface AgentState {
  key: AgentKeyPair
  node?: SavedNode
}

export function loadAgentState(dataDir: string): AgentState {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const keyPath = join(dataDir, KEY_FILE)
  let key: AgentKeyPair
  if (existsSync(keyPath)) {
    key = agentKeyFromPem(readFileSync(keyPath, 'utf8'))
  } else {
    key = generateAgentKey()
    // `wx`: two agents started on one fresh dir cannot overwrite each other's key.
    writeFileSync(keyPath, pemOf(key), { mode: 0o600, flag: 'wx' })
  }
  const nodePath = join(dataDir, NODE_FILE)
  const node = existsSync(nodePath) ? savedNodeOf(readFileSync(nodePath, 'utf8')) : undefined
  return { key, ...(node ? { node } : {}) }
}

export function saveNode(dataDir: string, node: SavedNode): void {
  writeFileSync(join(dataDir, NODE_FILE), `${JSON.stringify(node)}\n`, { mode: 0o600 })
}

/** The saved node, or undefined for a file that is not one (the agent then enrolls again). */
function savedNodeOf(text: string): SavedNode | undefined {
  try {
    const node = JSON.parse(text) as Partial<SavedNode>
    const valid =
      typeof node.server === 'string' &&
      typeof node.nodeId === 'string' &&
      Number.isInteger(node.heartbeatSeconds) &&
      (node.heartbeatSeconds ?? 0) > 0
    return valid ? (node as SavedNode) : undefined
  } catch {
    return undefined
  }
}
