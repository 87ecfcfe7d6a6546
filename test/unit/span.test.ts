import assert from 'node:assert/strict'
import { test } from 'node:test'
import { tracesEndpoint } from '../../src/span.ts'

test('tracing is on only with an OTLP endpoint from the standard variables, and the off switches win', () => {
  assert.equal(tracesEndpoint({}), undefined)
  assert.equal(
    tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }),
    'http://collector:4318/v1/traces',
  )
  assert.equal(
    tracesEndpoint({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:4318/custom',
    }),
    'http://traces:4318/custom',
  )
  assert.equal(
    tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }),
    undefined,
  )
  assert.equal(
    tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }),
    undefined,
  )
  assert.equal(
    tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'otlp' }),
    'http://collector:4318/v1/traces',
  )
  assert.equal(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }), undefined)
})
