import type { Claim } from './types.ts'

/**
 * Carries out the work a claim was taken for (a logout token, a SET, a revocation token: one
 * id, one execution). When the work fails, the claim is released, so that the sender's retry of
 * the same id is carried out instead of being refused as a replay; the work's error still
 * propagates. A release that fails too is told to `onReleaseFailed` (the id then stays used).
 */
export async function carryOutClaimed<T>(
  claim: Claim,
  work: () => Promise<T>,
  onReleaseFailed: (err: unknown) => void,
): Promise<T> {
  try {
    return await work()
  } catch (err) {
    await claim.release().catch(onReleaseFailed)
    throw err
  }
}
