import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setCookieName } from '../../../src/proxy/upstream-headers.ts'

test('issue 13 item 5: the name a browser stores, spaces and tabs trimmed', () => {
  assert.equal(setCookieName('__Host-Http-bff=x; Path=/'), '__Host-Http-bff')
  assert.equal(setCookieName('__Host-Http-bff =x; Path=/'), '__Host-Http-bff')
  assert.equal(setCookieName('\t__Host-Http-bff\t = x'), '__Host-Http-bff')
  assert.equal(setCookieName('a=b=c'), 'a')
  assert.equal(setCookieName('a=__Host-Http-bff=1'), 'a')
})

test('issue 13 item 5: a nameless cookie is named by what the browser sends back: its value', () => {
  assert.equal(setCookieName('__Host-Http-bff'), '__Host-Http-bff')
  assert.equal(setCookieName('__Host-Http-bff; Path=/; Secure'), '__Host-Http-bff')
  assert.equal(setCookieName('=__Host-Http-bff=x; Path=/'), '__Host-Http-bff')
  assert.equal(setCookieName(' = \t__Host-Http-bff =x'), '__Host-Http-bff')
  assert.equal(setCookieName('=other'), 'other')
  assert.equal(setCookieName('==__Host-Http-bff=x'), '')
  assert.equal(setCookieName(''), '')
})

test('issue 13 item 5: names keep their case (browsers store case variants as other cookies)', () => {
  assert.equal(setCookieName('__HOST-HTTP-BFF=x'), '__HOST-HTTP-BFF')
})
