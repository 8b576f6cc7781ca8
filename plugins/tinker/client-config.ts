// Client bootstrap routes (spec §3.1, §3.2): the feature flags every SDK holder fetches first, and the
// periodically refreshed dynamic config.

import type { FastifyInstance } from 'fastify'
import { type ClientConfigResponse, ClientConfigRoute, DynamicConfigRoute } from '../../core/wire/schemas.js'

/** The recommended flags: in-order chunk submission, no zstd, plain httpx transport, no JWT. */
export const CLIENT_FLAGS: ClientConfigResponse = {
  pjwt_auth_enabled: false,
  credential_default_source: 'api_key',
  parallel_fwdbwd_chunks: false,
  proto_compress_fwdbwd: false,
  use_pyqwest_transport: false,
  create_model_via_load_weights: false,
  proto_write_fwdbwd: true,
  fwd_via_fwdbwd: true,
}

export default async function clientConfigRoutes(app: FastifyInstance): Promise<void> {
  const sampleLimit = app.tuftConfig.server.sample_queue_limit
  // Only where the feed works (see Services.completions); SDK 0.25 ignores the flag.
  const batchPolling = app.tuft.completions !== null
  app.post('/client/config', { schema: ClientConfigRoute }, async () => ({
    ...CLIENT_FLAGS,
    sample_max_concurrent_requests: sampleLimit,
    sample_use_retrieve_futures: batchPolling,
  }))
  // A long interval: the flags never change while the server runs.
  app.post('/client/dynamic_config', { schema: DynamicConfigRoute }, async () => ({
    refresh_interval_sec: 3600,
  }))
}
