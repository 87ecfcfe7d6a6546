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

test("work that fails releases its claim (so the sender's retry is carried out) and its error propagates", async () => {
  const claim = claimThat()
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
  assert.deepEqual(failures, [])
})

test("a release that fails too is reported, and the work's error (not the release's) propagates", async () => {
  const claim = claimThat(true)
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
  assert.equal((failures[0] as Error).message, 'store down')
})
