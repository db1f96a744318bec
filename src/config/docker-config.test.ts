import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadConfig } from './load.ts'

describe('providers.docker config', () => {
  it('is auto by default, with the default port range and no explicit default provider', () => {
    const config = loadConfig({ env: {} })
    assert.equal(config.providers.docker.enabled, 'auto')
    assert.equal(config.providers.docker.portRangeStart, 19000)
    assert.equal(config.providers.docker.portRangeEnd, 29000)
    assert.equal(config.providers.default, undefined)
  })

  it('reads enabled as auto, true or false from the environment', () => {
    const enabled = (value: string) =>
      loadConfig({ env: { BERTH_PROVIDERS__DOCKER__ENABLED: value } }).providers.docker.enabled
    assert.equal(enabled('auto'), 'auto')
    assert.equal(enabled('true'), true)
    assert.equal(enabled('off'), false)
    assert.throws(() => enabled('sometimes'), /providers\.docker\.enabled/)
  })

  it('rejects a port range whose start is above its end', () => {
    assert.throws(
      () =>
        loadConfig({
          env: {
            BERTH_PROVIDERS__DOCKER__PORT_RANGE_START: '30000',
            BERTH_PROVIDERS__DOCKER__PORT_RANGE_END: '20000',
          },
        }),
      /portRangeEnd/,
    )
  })
})
