import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { takenPortOf } from './ports.ts'

describe('takenPortOf', () => {
  it('reads the host port from the engine bind failures', () => {
    assert.equal(
      takenPortOf(
        'driver failed programming external connectivity on endpoint berth-x (abc): Bind for 127.0.0.1:19000 failed: port is already allocated',
      ),
      19000,
    )
    assert.equal(
      takenPortOf('Error starting userland proxy: listen tcp4 127.0.0.1:19001: bind: address already in use'),
      19001,
    )
    assert.equal(takenPortOf('listen udp6 [::1]:19002: bind: address already in use'), 19002)
    assert.equal(takenPortOf('Bind for 0.0.0.0:19003 failed: port is already allocated'), 19003)
  })

  it('gives nothing for a message without a port', () => {
    assert.equal(takenPortOf('address already in use'), undefined)
  })
})
