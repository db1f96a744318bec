import type { Command } from 'commander'
import { invalidInput } from '../../domain/errors.ts'
import { exitCodes } from '../exit-codes.ts'
import { renderTable } from '../output.ts'
import type { Action } from './context.ts'

// `berth org …`: the organisations you belong to, which one commands act for, and their members.

interface Org {
  id: string
  name: string
  slug: string
  role: string
}

interface Member {
  address: string
  role: string
  addedAt: string
}

export function registerOrg(program: Command, action: Action): void {
  const org = program.command('org').description('organisations: teams of wallets with roles')

  org
    .command('ls')
    .description('the organisations you are a member of (* marks the one commands act for)')
    .action(
      action(async (ctx) => {
        const { items } = await ctx.client().get<{ items: Org[] }>('/v1/orgs')
        const current = ctx.org()
        ctx.print({ items, current: current ?? null }, () =>
          items.length === 0
            ? 'no organisations\n'
            : renderTable(
                ['', 'SLUG', 'NAME', 'ROLE'],
                items.map((o) => [o.slug === current || o.id === current ? '*' : '', o.slug, o.name, o.role]),
              ),
        )
        return exitCodes.ok
      }),
    )

  org
    .command('create')
    .description('create an organisation; you are its owner')
    .argument('<slug>', 'lower-case letters, digits and "-"')
    .requiredOption('--name <name>', 'its display name')
    .action(
      action(async (ctx, slug: string, opts: { name: string }) => {
        const created = await ctx.client().post<Org>('/v1/orgs', { slug, name: opts.name })
        ctx.print(created, () => `created ${created.slug} (${created.id}); you are its owner\n`)
        return exitCodes.ok
      }),
    )

  org
    .command('use')
    .description('act for this organisation from now on (on this server); --personal for yourself')
    .argument('[slug]', 'the organisation')
    .option('--personal', 'act for your own account again')
    .action(
      action(async (ctx, slug: string | undefined, opts: { personal?: boolean }) => {
        const server = ctx.server()
        if (opts.personal || !slug) {
          ctx.credentials().useOrg(server, undefined)
          ctx.print({ org: null }, () => 'acting for your own account\n')
          return exitCodes.ok
        }
        // Only an organisation you belong to: the server answers 404 for any other.
        const found = await ctx.client().get<Org>(`/v1/orgs/${encodeURIComponent(slug)}`)
        ctx.credentials().useOrg(server, found.slug)
        ctx.print(found, () => `acting for ${found.slug} as ${found.role}\n`)
        return exitCodes.ok
      }),
    )

  org
    .command('members')
    .description("an organisation's members and roles (default: the one you act for)")
    .argument('[slug]', 'the organisation')
    .action(
      action(async (ctx, slug: string | undefined) => {
        const ref = slug ?? ctx.org()
        if (!ref) throw invalidInput('name the organisation, or choose one with `berth org use`')
        const { items } = await ctx
          .client()
          .get<{ items: Member[] }>(`/v1/orgs/${encodeURIComponent(ref)}/members`)
        ctx.print({ items }, () =>
          renderTable(
            ['ADDRESS', 'ROLE', 'ADDED'],
            items.map((m) => [m.address, m.role, m.addedAt]),
          ),
        )
        return exitCodes.ok
      }),
    )

  org
    .command('add')
    .description('add a member by wallet address')
    .argument('<address>', '0x… wallet address (it need not have signed in)')
    .requiredOption('--role <role>', 'owner, admin, deployer, billing or viewer')
    .action(
      action(async (ctx, address: string, opts: { role: string }) => {
        const ref = currentOrg(ctx.org())
        const added = await ctx
          .client()
          .post<Member>(`/v1/orgs/${encodeURIComponent(ref)}/members`, { address, role: opts.role })
        ctx.print(added, () => `${added.address} is ${added.role} of ${ref}\n`)
        return exitCodes.ok
      }),
    )

  org
    .command('role')
    .description("change a member's role")
    .argument('<address>', "the member's wallet address")
    .argument('<role>', 'owner, admin, deployer, billing or viewer')
    .action(
      action(async (ctx, address: string, role: string) => {
        const ref = currentOrg(ctx.org())
        const changed = await ctx
          .client()
          .request<Member>('PATCH', memberPath(ref, address), { body: { role } })
        ctx.print(changed, () => `${changed.address} is now ${changed.role} of ${ref}\n`)
        return exitCodes.ok
      }),
    )

  org
    .command('remove')
    .description('remove a member (your own address: leave the organisation)')
    .argument('<address>', "the member's wallet address")
    .action(
      action(async (ctx, address: string) => {
        const ref = currentOrg(ctx.org())
        await ctx.client().del(memberPath(ref, address))
        ctx.print({ removed: address }, () => `${address} is no longer a member of ${ref}\n`)
        return exitCodes.ok
      }),
    )

  org
    .command('delete')
    .description('delete an organisation (owners only; it must have no deployments and no balance)')
    .argument('<slug>', 'the organisation, named in full as a confirmation')
    .action(
      action(async (ctx, slug: string) => {
        await ctx.client().del(`/v1/orgs/${encodeURIComponent(slug)}`)
        const server = ctx.server()
        if (ctx.credentials().org(server) === slug) ctx.credentials().useOrg(server, undefined)
        ctx.print({ deleted: slug }, () => `deleted ${slug}\n`)
        return exitCodes.ok
      }),
    )
}

function currentOrg(ref: string | undefined): string {
  if (!ref) throw invalidInput('choose the organisation with --org or `berth org use`')
  return ref
}

const memberPath = (org: string, address: string) =>
  `/v1/orgs/${encodeURIComponent(org)}/members/${encodeURIComponent(address)}`
