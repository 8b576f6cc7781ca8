// How loaded the server is, for operators (GET /api/v1/admin/status, plugins/admin-status.ts): the work
// waiting in each model's training scheduler and sampling queue (the `queue.depth` events), and the
// fraction of recent wall time each engine had a call in flight. Counted whether or not telemetry is
// on, so the console can show it on a plain `npm start`.

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { EventBus, TuftEvents } from '../core/events.js'
import { BusyTracker } from './telemetry/busy.js'

declare module 'fastify' {
  interface FastifyInstance {
    serverLoad: ServerLoad
  }
}

export type EngineRole = 'training' | 'sampling'

export interface RoleLoad {
  queue_depth: number
  /** Share of the time since the previous reading (at least 1 s) with an engine call in flight. */
  busy_fraction: number
}

export class ServerLoad {
  private readonly depth = new Map<string, number>()
  private readonly busy = new Map<string, BusyTracker>()

  /** Subscribes to the bus; the returned function unsubscribes. */
  observe(events: EventBus): () => void {
    const listener = (e: TuftEvents['queue.depth'][0]) => this.depth.set(`${e.modelName}/${e.kind}`, e.depth)
    events.on('queue.depth', listener)
    return () => events.off('queue.depth', listener)
  }

  /**
   * The engine, with every asynchronous call counted as busy time. Engine methods are asynchronous by
   * contract (core/engine.ts); anything that returns no promise passes through uncounted.
   */
  track<E extends object>(engine: E, modelName: string, role: EngineRole): E {
    const busy = this.tracker(modelName, role)
    return new Proxy(engine, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target)
        if (typeof value !== 'function' || prop === 'close') return value
        return (...args: unknown[]) => {
          const result: unknown = value.apply(target, args)
          if (!(result instanceof Promise)) return result
          busy.begin()
          return result.finally(() => busy.end())
        }
      },
    })
  }

  of(modelName: string, role: EngineRole): RoleLoad {
    return {
      queue_depth: this.depth.get(`${modelName}/${role}`) ?? 0,
      busy_fraction: this.tracker(modelName, role).fraction(),
    }
  }

  private tracker(modelName: string, role: EngineRole): BusyTracker {
    const key = `${modelName}/${role}`
    let tracker = this.busy.get(key)
    if (!tracker) {
      tracker = new BusyTracker()
      this.busy.set(key, tracker)
    }
    return tracker
  }
}

async function serverLoadPlugin(app: FastifyInstance): Promise<void> {
  const load = new ServerLoad()
  const stop = load.observe(app.getDecorator<EventBus>('events'))
  app.decorate('serverLoad', load)
  app.addHook('onClose', async () => stop())
}

export default fp(serverLoadPlugin, {
  name: 'tuft-server-load',
  fastify: '5.x',
  dependencies: ['tuft-config'],
})
