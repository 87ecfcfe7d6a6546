import assert from 'node:assert/strict'
import { test } from 'node:test'
import { carryOutClaimed } from '../../../src/session/claim.ts'

/** A claim that counts its releases, and fails them when told to. */
const claimThat = (releaseFails = false) => {
  const claim = {
    releases: 0,
    async release() {
      claim.releases++
      if (releaseFails) throw new Error('store down')
    },
  }
  return claim
}

test('work that succeeds keeps its claim (the id stays used) and returns its result', async () => {
  const claim = claimThat()
  const failures: unknown[] = []
  assert.equal(
    await carryOutClaimed(
      claim,
      async () => 3,
      (err) => failures.push(err),
    ),
    3,
  )
  assert.equal(claim.releases, 0)
  assert.deepEqual(failures, [])
})

for (const releaseFails of [false, true]) {
  test(`work that fails releases its claim (so the sender's retry is carried out) and its own error propagates${releaseFails ? '; a release that fails too is reported' : ''}`, async () => {
    const claim = claimThat(releaseFails)
    const failures: unknown[] = []
    const error = new Error('redis unavailable')
    await assert.rejects(
      carryOutClaimed(
        claim,
        async () => Promise.reject(error),
        (err) => failures.push(err),
      ),
      (err) => err === error,
    )
    assert.equal(claim.releases, 1)
    assert.deepEqual(
      failures.map((err) => (err as Error).message),
      releaseFails ? ['store down'] : [],
    )
  })
}
