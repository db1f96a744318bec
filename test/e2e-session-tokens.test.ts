import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { decodeJwt, SignJWT } from 'jose'
import { api, type RunningBerth, signIn } from './helpers/server.ts'
import { assertError, type Body, SIWE_SESSION_SECRET, startSiweBerth } from './helpers/siwe-berth.ts'

// Session tokens against the real `berth serve` process: a token is taken only while its session
// lives and it carries the server's signature; everything else is refused with 401.

let berth: RunningBerth

before(async () => {
  berth = await startSiweBerth()
})

after(async () => {
  await berth?.stop()
})

describe('session tokens (e2e)', () => {
  /** Re-signs a real session token's claims with the server's secret and the given expiry. */
  async function forge(token: string, exp: number, claims: Record<string, unknown> = {}): Promise<string> {
    const real = decodeJwt(token)
    return new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(real.iss!)
      .setSubject(String(claims.sub ?? real.sub))
      .setJti(String(claims.jti ?? real.jti))
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(SIWE_SESSION_SECRET))
  }

  it('accepts a token forged with the right secret and a future expiry (the control)', async () => {
    const { token } = await signIn(berth.url)
    const forged = await forge(token, Math.floor(Date.now() / 1000) + 600)
    assert.equal((await api(berth.url, forged).get<Body>('/v1/auth/me')).status, 200)
  })

  it('refuses an expired token', async () => {
    const { token } = await signIn(berth.url)
    const expired = await forge(token, Math.floor(Date.now() / 1000) - 3600)
    const response = await api(berth.url, expired).get<Body>('/v1/auth/me')
    assertError(response, 401, 'unauthorized', /expired/)
    assertError(await api(berth.url, expired).get<Body>('/v1/deployments'), 401, 'unauthorized')
  })

  it('refuses a token for a session that does not exist', async () => {
    const { token } = await signIn(berth.url)
    const forged = await forge(token, Math.floor(Date.now() / 1000) + 600, {
      jti: '00000000-0000-4000-8000-000000000000',
    })
    assertError(await api(berth.url, forged).get<Body>('/v1/auth/me'), 401, 'unauthorized')
  })

  it('refuses garbage, a token signed with another secret, and a bad Authorization header', async () => {
    const { token } = await signIn(berth.url)
    for (const bad of ['garbage', 'a.b.c', `${token}x`, `berth_${'x'.repeat(43)}`]) {
      assertError(await api(berth.url, bad).get<Body>('/v1/auth/me'), 401, 'unauthorized')
    }
    const real = decodeJwt(token)
    const otherSecret = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(real.iss!)
      .setSubject(real.sub!)
      .setJti(real.jti!)
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode('not-the-server-secret-0123456789abcdef'))
    assertError(await api(berth.url, otherSecret).get<Body>('/v1/auth/me'), 401, 'unauthorized', /signature/)
    const basic = await api(berth.url).get<Body>('/v1/auth/me', { authorization: `Basic ${token}` })
    assertError(basic, 401, 'unauthorized')
  })

  it('refuses the token after logout, and only that session ends', async () => {
    const first = await signIn(berth.url)
    const second = await signIn(berth.url, first.privateKey)
    const logout = await api(berth.url, first.token).post<Body>('/v1/auth/logout')
    assert.equal(logout.status, 200, JSON.stringify(logout.body))
    assertError(await api(berth.url, first.token).get<Body>('/v1/auth/me'), 401, 'unauthorized', /revoked/)
    assertError(await api(berth.url, first.token).get<Body>('/v1/deployments'), 401, 'unauthorized')
    assertError(await api(berth.url, first.token).post<Body>('/v1/auth/logout'), 401, 'unauthorized')
    assert.equal((await api(berth.url, second.token).get<Body>('/v1/auth/me')).status, 200)
  })

  it('still answers /health after all of the above', async () => {
    const response = await api(berth.url).get<Body>('/health')
    assert.equal(response.status, 200)
    assert.equal(response.body.status, 'ok')
  })
})
