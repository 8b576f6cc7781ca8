// Sampler weights where the vLLM server can read them: each adapter's PEFT files are copied into
// adapter_dir under their own name, and referred to by the path the server sees (adapter_dir_on_server
// when adapter_dir is a shared volume mounted elsewhere). Removed again when the adapter is released.

import { cp, mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'

export class AdapterStaging {
  private count = 0

  constructor(
    private readonly dir: string,
    private readonly dirOnServer: string,
    /** Tells this process's copies from those of other tuft processes sharing adapter_dir. */
    private readonly prefix: string,
  ) {}

  /** Copies `source` into adapter_dir; answers the name it has there and its path on the server. */
  async stage(source: string): Promise<{ name: string; path: string }> {
    const name = `${this.prefix}-${++this.count}`
    await mkdir(this.dir, { recursive: true })
    await cp(source, join(this.dir, name), { recursive: true })
    return { name, path: join(this.dirOnServer, name) }
  }

  async release(name: string): Promise<void> {
    await rm(join(this.dir, name), { recursive: true, force: true })
  }
}
