import { z } from 'zod'
import { invalidAllowEntries } from '../outbound/address-policy.ts'
import { nftCollectionsSchema, nftSchema } from './nft-schema.ts'
import { notificationsSchema } from './notifications-schema.ts'
import { address, networksSchema, paymentsSchema, pricingSchema } from './payments-schema.ts'
import { bool, commaList, int } from './zod-helpers.ts'

// The one config schema. Every key has a default so `berth serve` runs with no config at all;
// README.md lists each key with its env var and default (test/config-reference.test.ts keeps them in step).

/** JSON in an env variable; left as text when it is not JSON, so the schema names the problem. */
const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** Registry hosts, as a list or (env) comma-separated: `ghcr.io`, `registry.example:5000`. */
const registryList = commaList(
  z.string().regex(/^[a-zA-Z0-9.-]+(:\d{1,5})?$/, 'must be a registry host such as ghcr.io'),
  { max: 256 },
).default([])

const registryAuth = z
  .strictObject({
    /** A registry host, with a port if it has one: `ghcr.io`, `registry.example:5000`, `docker.io`. */
    registry: z
      .string()
      .regex(
        /^(https?:\/\/)?[a-zA-Z0-9.-]+(:\d{1,5})?(\/.*)?$/,
        'must be a registry host such as ghcr.io or registry.example:5000',
      ),
    username: z.string().min(1),
    password: z.string().min(1).optional(),
    /** A file holding the password (a mounted secret); read at start. */
    passwordFile: z.string().min(1).optional(),
    /** Repositories served: `acme/agent`, or `acme/*` for all under acme/ (absent: every one). */
    repositories: z
      .array(
        z.string().regex(/^[a-z0-9._/-]+(\/\*)?$|^\*$/, 'must be a repository such as acme/agent or acme/*'),
      )
      .min(1)
      .max(256)
      .optional(),
    /**
     * Who may run images these credentials serve: `templates` (the operator's NFT collection
     * templates only; the default), `all`, or a list of wallet addresses.
     */
    allowedFor: z
      .union([z.enum(['templates', 'all']), z.array(address).min(1).max(10_000)])
      .default('templates'),
  })
  .refine((a) => (a.password === undefined) !== (a.passwordFile === undefined), {
    message: 'give exactly one of password and passwordFile',
    path: ['password'],
  })

export const configSchema = z
  .strictObject({
    port: int(0, 65535).default(8080),
    host: z.string().min(1).default('127.0.0.1'),
    dataDir: z.string().min(1).default('./.berth'),
    /** Base URL users reach berth at; its host is the SIWE domain. Defaults to http://localhost:<port>. */
    publicUrl: z.url().optional(),
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    adminToken: z.string().min(16, 'must be at least 16 characters').optional(),
    /**
     * The master key file (keys that wrap every owner's data key). Default `<dataDir>/master.key`,
     * generated on first start when absent.
     */
    masterKeyFile: z.string().min(1).optional(),
    /** Secret for signing session JWTs; when unset berth generates one and keeps it in the database. */
    sessionSecret: z.string().min(32, 'must be at least 32 characters').optional(),
    sessionTtlSeconds: int(60, 30 * 86400).default(86400),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** `auto`: one readable line per entry on a terminal, JSON lines otherwise (files, collectors). */
    logFormat: z.enum(['auto', 'json', 'pretty']).default('auto'),
    bodyLimitBytes: int(1024, 50 * 1024 * 1024).default(1024 * 1024),
    /**
     * Proxies of the operator's in front of berth: the client address is then the one the
     * outermost of them saw in X-Forwarded-For (0: the socket's peer; a client can forge the header).
     */
    trustProxyHops: int(0, 10).default(0),
    rateLimits: z
      .strictObject({
        /** Sign-in requests (nonce, verify) per client address. */
        signInPerMinute: int(1, 1_000_000).default(60),
        signInBurst: int(1, 1_000_000).default(60),
        /** Nonces issued per minute for all clients together: bounds the nonce table (× nonceTtlSeconds). */
        noncesPerMinute: int(1, 1_000_000).default(3000),
        /** Writes (creates, intents, quotes, payments, keys) per account. */
        writesPerMinute: int(1, 10_000_000).default(1200),
        writeBurst: int(1, 10_000_000).default(200),
      })
      .prefault({}),
    /** What one account may hold at once; the operator overrides them per account. */
    quotas: z
      .strictObject({
        deployments: int(0, 1_000_000_000).default(50),
        replicas: int(0, 1_000_000_000).default(100),
        hostPorts: int(0, 1_000_000_000).default(100),
        cpus: z.coerce.number().min(0).max(1_000_000).default(32),
        memoryMb: int(0, 1_000_000_000).default(65_536),
        diskMb: int(0, 1_000_000_000).default(262_144),
        volumes: int(0, 1_000_000_000).default(64),
        apiKeys: int(0, 1_000_000_000).default(25),
      })
      .prefault({}),
    streams: z
      .strictObject({
        /** SSE and WebSocket streams open at once per account (on each replica). */
        perAccount: int(1, 10_000).default(32),
        /** How often an open stream's credential and deployment are checked again. */
        recheckSeconds: int(1, 5).default(2),
      })
      .prefault({}),
    siwe: z
      .strictObject({
        clockSkewSeconds: int(0, 3600).default(60),
        nonceTtlSeconds: int(30, 86400).default(600),
        /** Chain IDs a sign-in message may name; any when unset. Env: comma-separated. */
        chainIds: commaList(int(1, Number.MAX_SAFE_INTEGER), { min: 1 }).optional(),
      })
      .prefault({}),
    externalJwt: z
      .strictObject({
        issuer: z.string().min(1),
        jwksUrl: z.url(),
        audience: z.string().min(1).optional(),
      })
      .optional(),
    reconciler: z
      .strictObject({
        enabled: bool.default(true),
        concurrency: int(1, 256).default(16),
        pollIntervalMs: int(10, 600_000).default(1000),
        leaseSeconds: int(2, 3600).default(30),
        resyncSeconds: int(1, 86400).default(30),
        backoffBaseMs: int(10, 600_000).default(1000),
        backoffMaxMs: int(100, 3_600_000).default(300_000),
        /** How often labelled instances with no live deployment are removed. */
        sweepIntervalSeconds: int(1, 86400).default(60),
        /** A deployment whose steps keep failing (not an unreachable provider) fails after this long. */
        maxRetrySeconds: int(10, 30 * 86400).default(1800),
      })
      .prefault({}),
    health: z
      .strictObject({
        /** Delay before the 1st, 2nd, … restart of an unhealthy deployment; the last one repeats. */
        restartLadderSeconds: commaList(int(0, 86400), { min: 1 }).default([0, 30, 300, 900, 1800]),
        /** Healthy this long after a restart and the ladder starts again from its first rung. */
        ladderResetSeconds: int(1, 86400).default(600),
        /** More restarts than this within the window and the deployment is failed. */
        maxRestarts: int(0, 1000).default(5),
        restartWindowSeconds: int(1, 7 * 86400).default(3600),
      })
      .prefault({}),
    billing: z
      .strictObject({
        /**
         * Longest a deployment may be `starting` (its containers up, not yet billed) per start;
         * past it the start fails as unhealthy. Starts are bounded by health.maxRestarts per window.
         */
        maxUnbilledStartSeconds: int(10, 86400).default(600),
      })
      .prefault({}),
    usage: z
      .strictObject({
        /** How often running deployments' CPU, memory and network are sampled; 0 turns it off. */
        sampleIntervalSeconds: int(0, 86400).default(60),
      })
      .prefault({}),
    providers: z
      .strictObject({
        /** Provider for specs that name none; unset: docker when its engine answers at start, else simulated. */
        default: z.string().min(1).optional(),
        simulated: z
          .strictObject({
            enabled: bool.default(true),
            /** Where simulated instances are kept; defaults to <dataDir>/simulated. */
            stateDir: z.string().min(1).optional(),
            /** Per-stage latency; 0 for load tests. */
            pullMs: int(0, 600_000).default(300),
            createMs: int(0, 600_000).default(200),
            startMs: int(0, 600_000).default(300),
            /** The simulated machine's size, for capacity admission; absent: room for everything. */
            cpus: z.coerce.number().positive().max(100_000).optional(),
            memoryMb: int(1, 1_000_000_000).optional(),
          })
          .prefault({}),
        docker: z
          .strictObject({
            /** `auto`: offered (and the default provider) when the engine answers at start. */
            enabled: z.union([z.literal('auto'), bool]).default('auto'),
            /** unix:///var/run/docker.sock (default), tcp://host:2375, https://host:2376 or ssh://user@host. */
            host: z.string().min(1).optional(),
            /** Host address published ports bind to. */
            hostIp: z.string().min(1).default('127.0.0.1'),
            /** Host name in endpoint URLs; defaults to hostIp (localhost when that is 0.0.0.0). */
            publicHost: z.string().min(1).optional(),
            pidsLimit: int(8, 1_000_000).default(256),
            /** SIGTERM, then SIGKILL after this many seconds. */
            stopGraceSeconds: int(0, 3600).default(10),
            /** Read-only root filesystem (with a tmpfs /tmp) unless a spec says otherwise. */
            readOnlyRootfs: bool.default(false),
            pullAttempts: int(1, 20).default(3),
            /** Credentials for private registries, used when pulling; env: a JSON list. */
            registryAuths: z
              .preprocess((v) => (typeof v === 'string' ? parseJson(v) : v), z.array(registryAuth).max(64))
              .default([]),
            /**
             * Starts are admitted while the deployments on the engine ask for at most its CPUs
             * and memory times this (1: never more than the machine has).
             */
            overcommit: z.coerce.number().min(0.1).max(100).default(1),
            /** Only images from these registries (empty: any public one; listed ones may be private hosts). */
            allowedRegistries: registryList,
            /** Never images from these registries. */
            deniedRegistries: registryList,
            /** What deleting a deployment does to its named volumes. */
            volumeRetention: z.enum(['delete', 'keep']).default('delete'),
            /**
             * A volume's `sizeMb`: `enforce` (a loop-mounted filesystem of that size per volume;
             * needs berth as root on the engine's host), `record` (a label only), or `auto`
             * (enforce when it can, else record, with a warning at start).
             */
            volumeSizes: z.enum(['auto', 'enforce', 'record']).default('auto'),
            /** Where enforced volumes' filesystems are kept; defaults to <dataDir>/volumes. */
            volumesDir: z.string().min(1).optional(),
            /** Host ports are allocated from this range, inclusive. */
            portRangeStart: int(1, 65535).default(19000),
            portRangeEnd: int(1, 65535).default(29000),
          })
          .refine((d) => d.portRangeStart <= d.portRangeEnd, {
            message: 'portRangeStart must not be above portRangeEnd',
            path: ['portRangeEnd'],
          })
          .prefault({}),
        swarm: z
          .strictObject({
            /** `auto`: offered when the engine at `host` answers as a swarm manager at start. */
            enabled: z.union([z.literal('auto'), bool]).default('auto'),
            /** A manager's engine: unix:///var/run/docker.sock (default), tcp://, https:// or ssh://. */
            host: z.string().min(1).optional(),
            /** `host`: ports published on the node that runs the task; `ingress`: on every node (routing mesh). */
            publishMode: z.enum(['host', 'ingress']).default('host'),
            /** Encrypts the owners' overlay networks between nodes (IPsec). */
            encryptNetworks: bool.default(false),
            /** Volume driver; `local` keeps each replica with volumes on the node that has its data. */
            volumeDriver: z
              .string()
              .regex(/^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}$/, 'must be a volume driver name')
              .default('local'),
            /** Host in `ingress` endpoint URLs (a load balancer, a name for the nodes); default: a manager. */
            publicHost: z.string().min(1).optional(),
            /**
             * Constraints every task gets, which no spec can lift: `node.role==worker` keeps
             * tenants off the managers (which hold every secret); `node.labels.pool==tenants`.
             */
            constraints: commaList(
              z
                .string()
                .regex(
                  /^(node\.(id|hostname|role|platform\.os|platform\.arch)|(node|engine)\.labels\.[A-Za-z0-9._/-]+) ?(==|!=) ?[A-Za-z0-9._:/-]+$/,
                  'must be a Swarm constraint such as node.role==worker or node.labels.pool==tenants',
                ),
              { max: 32 },
            ).default([]),
            pidsLimit: int(8, 1_000_000).default(256),
            stopGraceSeconds: int(0, 3600).default(10),
            readOnlyRootfs: bool.default(false),
            /** How long a deploy waits for its tasks to run before it retries later. */
            startTimeoutSeconds: int(5, 3600).default(120),
            volumeRetention: z.enum(['delete', 'keep']).default('delete'),
            /** Published ports come from this range (apart from the docker provider's). */
            portRangeStart: int(1, 65535).default(29001),
            portRangeEnd: int(1, 65535).default(32000),
          })
          .refine((d) => d.portRangeStart <= d.portRangeEnd, {
            message: 'portRangeStart must not be above portRangeEnd',
            path: ['portRangeEnd'],
          })
          .prefault({}),
        fleet: z
          .strictObject({
            /** Offers the `fleet` provider: deployments placed on the community fleet's nodes. */
            enabled: bool.default(true),
          })
          .prefault({}),
      })
      .prefault({}),
    fleet: z
      .strictObject({
        /** Any wallet may enroll a node; false: enrollment needs a join token from the operator. */
        open: bool.default(false),
        /** How often agents send a signed heartbeat. */
        heartbeatSeconds: int(1, 3600).default(10),
        /** How far a heartbeat's time may be from the control plane's clock. */
        clockSkewSeconds: int(1, 3600).default(30),
        /** A silence longer than this closes a node's uptime session; the next heartbeat opens one. */
        sessionGapSeconds: int(1, 7 * 86400).default(1800),
        /** Beyond three missed heartbeats, how long a silent node has before it counts as lost. */
        lossGraceSeconds: int(0, 86400).default(5),
        /** Nodes below this uptime over 7 days get no new replicas (new nodes: see the README). */
        minUptimePercent: z.coerce.number().min(0).max(100).default(95),
        /** How long after a node is lost its replicas are placed elsewhere (grows on repeated loss). */
        rescheduleDelaySeconds: int(0, 86400).default(30),
        /**
         * What the agent install script installs with npm: a package spec, a tarball URL or a
         * path; unset, node operators name it themselves (BERTH_PACKAGE).
         */
        agentPackage: z
          .string()
          .regex(/^[A-Za-z0-9:/._~%?&=+@-]{1,512}$/, 'must be an npm package spec, tarball URL or path')
          .optional(),
      })
      .prefault({}),
    metrics: z
      .strictObject({
        /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
        token: z.string().min(16, 'must be at least 16 characters').optional(),
      })
      .prefault({}),
    outbound: z
      .strictObject({
        /**
         * CIDs and host[:port] that requests to user-influenced URLs may reach although they are
         * not public (a local IPFS gateway, a test receiver); env: comma-separated.
         */
        allow: commaList(z.string().min(1).max(256), { max: 256 })
          .default([])
          .superRefine((entries, ctx) => {
            for (const entry of invalidAllowEntries(entries)) {
              ctx.addIssue({ code: 'custom', message: `not a CIDR or host[:port]: ${entry}` })
            }
          }),
      })
      .prefault({}),
    notifications: notificationsSchema,
    payments: paymentsSchema,
    pricing: pricingSchema,
    /** EVM networks and tokens accepted for payment; set in the config file. */
    networks: networksSchema,
    nft: nftSchema,
    /** NFT collections whose tokens deployments may be bound to; each on one of `networks`. */
    nftCollections: nftCollectionsSchema,
    templates: z
      .strictObject({
        /** Directories of the operator's own template files, read with the built-in ones at start. */
        dirs: commaList(z.string().min(1).max(4096), { max: 32 }).default([]),
      })
      .prefault({}),
    images: z
      .strictObject({
        /**
         * Image references replaced by others when a template is deployed (`postgres:16` →
         * `registry.internal/postgres:16`), for hosts that cannot reach the public registries.
         */
        mirror: z.record(z.string().min(1).max(512), z.string().min(1).max(512)).default({}),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    const chains = new Set(config.networks.map((n) => n.chainId))
    config.nftCollections.forEach((c, i) => {
      if (!chains.has(c.chainId))
        ctx.addIssue({
          code: 'custom',
          message: `chainId ${c.chainId} is not one of networks (RPC access comes from there)`,
          path: ['nftCollections', i, 'chainId'],
        })
    })
  })

export type Config = z.output<typeof configSchema>
