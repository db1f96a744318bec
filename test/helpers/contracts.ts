import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  type Abi,
  type Account,
  type Address,
  type Chain,
  type Hex,
  parseAbi,
  type Transport,
  type WalletClient,
} from 'viem'
import { waitForTransactionReceipt } from 'viem/actions'

// Test contracts under test/contracts/*.sol, compiled with solc-js when the tests run (so a
// change to a .sol file is picked up without a build step) and deployed with viem. Compiling
// OpenZeppelin takes seconds, so the output is kept in memory per process and on disk under the
// tmp dir, keyed by a hash of the compiler version and every source it read.

const require = createRequire(import.meta.url)
const CONTRACTS_DIR = fileURLToPath(new URL('../contracts/', import.meta.url))
const OZ_PACKAGE = require.resolve('@openzeppelin/contracts/package.json')
// Imports are written '@openzeppelin/contracts/…', i.e. relative to node_modules.
const NODE_MODULES = dirname(dirname(dirname(OZ_PACKAGE)))
const SOLC_VERSION = (
  JSON.parse(readFileSync(require.resolve('solc/package.json'), 'utf8')) as { version: string }
).version

export const erc20Abi = parseAbi([
  'function name() view returns (string)',
  'function symbol() view returns (string)',
  'function decimals() view returns (uint8)',
  'function totalSupply() view returns (uint256)',
  'function balanceOf(address owner) view returns (uint256)',
  'function allowance(address owner, address spender) view returns (uint256)',
  'function approve(address spender, uint256 amount) returns (bool)',
  'function transfer(address to, uint256 amount) returns (bool)',
  'function transferFrom(address from, address to, uint256 amount) returns (bool)',
  'function mint(address to, uint256 amount)',
  'event Transfer(address indexed from, address indexed to, uint256 value)',
  'event Approval(address indexed owner, address indexed spender, uint256 value)',
])

export const nft721Abi = parseAbi([
  'function ownerOf(uint256 id) view returns (address)',
  'function balanceOf(address owner) view returns (uint256)',
  'function tokenURI(uint256 id) view returns (string)',
  'function mint(address to, uint256 id)',
  'function burn(uint256 id)',
  'function setBaseURI(string base)',
  'function transferFrom(address from, address to, uint256 id)',
  'function safeTransferFrom(address from, address to, uint256 id)',
  'event Transfer(address indexed from, address indexed to, uint256 indexed tokenId)',
])

export const nft1155Abi = parseAbi([
  'function balanceOf(address owner, uint256 id) view returns (uint256)',
  'function uri(uint256 id) view returns (string)',
  'function mint(address to, uint256 id, uint256 amount)',
  'function burn(address from, uint256 id, uint256 amount)',
  'function setURI(string uri)',
  'function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes data)',
  'event TransferSingle(address indexed operator, address indexed from, address indexed to, uint256 id, uint256 value)',
  'event TransferBatch(address indexed operator, address indexed from, address indexed to, uint256[] ids, uint256[] values)',
])

export const priceFeedAbi = parseAbi([
  'function decimals() view returns (uint8)',
  'function description() view returns (string)',
  'function version() view returns (uint256)',
  'function latestRoundData() view returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)',
  'function setAnswer(int256 answer, uint256 updatedAt)',
])

export type ContractName =
  | 'TestToken'
  | 'FeeOnTransferToken'
  | 'FalseReturningToken'
  | 'PhantomTransferToken'
  | 'TestNft721'
  | 'TestNft1155'
  | 'TestPriceFeed'

export interface Artifact {
  abi: Abi
  bytecode: Hex
}

type Artifacts = Record<string, Artifact>

let compiled: Promise<Artifacts> | undefined

/** Every contract under test/contracts, compiled once per process (and cached on disk). */
export function compileContracts(): Promise<Artifacts> {
  compiled ??= compileAll()
  return compiled
}

async function compileAll(): Promise<Artifacts> {
  const sources: Record<string, { content: string }> = {}
  for (const file of readdirSync(CONTRACTS_DIR)
    .filter((f) => f.endsWith('.sol'))
    .sort()) {
    sources[file] = { content: readFileSync(join(CONTRACTS_DIR, file), 'utf8') }
  }
  // The imports are only known after compiling, so the key covers the OpenZeppelin version
  // instead of its files: a package is immutable once installed.
  const ozVersion = (
    JSON.parse(readFileSync(OZ_PACKAGE, 'utf8')) as {
      version: string
    }
  ).version
  const hash = createHash('sha256')
    .update(JSON.stringify({ SOLC_VERSION, ozVersion, sources }))
    .digest('hex')
    .slice(0, 16)
  const cacheDir = join(tmpdir(), 'berth-solc-cache')
  const cacheFile = join(cacheDir, `${hash}.json`)
  try {
    return JSON.parse(readFileSync(cacheFile, 'utf8')) as Artifacts
  } catch {
    // Not cached yet: compile below.
  }
  const { default: solc } = await import('solc')
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  }
  const findImports = (path: string) => {
    if (!path.startsWith('@openzeppelin/')) return { error: `not found: ${path}` }
    try {
      return { contents: readFileSync(join(NODE_MODULES, path), 'utf8') }
    } catch {
      return { error: `not found: ${path}` }
    }
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports })) as {
    errors?: Array<{ severity: string; formattedMessage: string }>
    contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>
  }
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  if (errors.length) throw new Error(`solc: ${errors.map((e) => e.formattedMessage).join('\n')}`)
  const artifacts: Artifacts = {}
  for (const file of Object.keys(sources)) {
    for (const [name, contract] of Object.entries(output.contracts[file] ?? {})) {
      artifacts[name] = { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` }
    }
  }
  // Written to a temp name first, so a concurrent test process never reads half a file.
  mkdirSync(cacheDir, { recursive: true })
  const tmp = `${cacheFile}.${process.pid}`
  writeFileSync(tmp, JSON.stringify(artifacts))
  renameSync(tmp, cacheFile)
  return artifacts
}

export type Deployer = WalletClient<Transport, Chain, Account>

/** Deploys a compiled contract and waits for its receipt. */
export async function deployContract(
  client: Deployer,
  name: ContractName,
  args: unknown[] = [],
): Promise<Address> {
  const artifact = (await compileContracts())[name]
  if (!artifact) throw new Error(`no compiled contract ${name}`)
  const hash = await client.deployContract({ abi: artifact.abi, bytecode: artifact.bytecode, args })
  const receipt = await waitForTransactionReceipt(client, { hash, pollingInterval: 20 })
  if (receipt.status !== 'success' || !receipt.contractAddress) throw new Error(`deploying ${name} failed`)
  return receipt.contractAddress
}

export const deployTestToken = (client: Deployer) => deployContract(client, 'TestToken')
export const deployFeeOnTransferToken = (client: Deployer) => deployContract(client, 'FeeOnTransferToken')
export const deployFalseReturningToken = (client: Deployer) => deployContract(client, 'FalseReturningToken')
export const deployPhantomTransferToken = (client: Deployer) => deployContract(client, 'PhantomTransferToken')
export const deployTestNft721 = (client: Deployer) => deployContract(client, 'TestNft721')
export const deployTestNft1155 = (client: Deployer) => deployContract(client, 'TestNft1155')
/** A feed answering with `decimals` decimals (Chainlink USD feeds use 8). */
export const deployTestPriceFeed = (client: Deployer, decimals = 8, description = 'TEST / USD') =>
  deployContract(client, 'TestPriceFeed', [decimals, description])

/** Waits for the receipt of a sent transaction (`receiptOf(client, client.writeContract(…))`). */
export async function receiptOf(client: Deployer, sent: Promise<Hex> | Hex) {
  return waitForTransactionReceipt(client, { hash: await sent, pollingInterval: 20 })
}

/** Sends `amount` of an ERC-20 to `to` and waits for the receipt. */
export function transferToken(client: Deployer, token: Address, to: Address, amount: bigint) {
  return receiptOf(
    client,
    client.writeContract({ address: token, abi: erc20Abi, functionName: 'transfer', args: [to, amount] }),
  )
}
