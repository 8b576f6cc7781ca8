// Which OpenBLAS kernels to ask for before the addon (linked against OpenBLAS) is loaded.
// OpenBLAS picks its kernels once, when the library loads, from the CPU model it knows; a release
// older than the CPU falls back to its generic "Prescott" kernels. Debian 12's 0.3.21 does so on Intel
// Xeons of the Emerald Rapids generation, where the LoRA gradient products it runs (dB += dyᵀ·u, the
// LM head's 151,936 × rank among them) were 4× slower than with the AVX-512 ("SkylakeX") kernels the
// CPU can run. OPENBLAS_CORETYPE, read at load, names the kernels; a value the user set is kept.
import { readFileSync } from 'node:fs'

const SKYLAKEX_FLAGS = ['avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl']

/** The core type to name for this CPU (/proc/cpuinfo text), or undefined to leave OpenBLAS's choice. */
export function openblasCoreType(cpuinfo: string): string | undefined {
  if (!/^vendor_id\s*:\s*GenuineIntel$/m.test(cpuinfo)) return undefined
  const flags = new Set(/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1]?.trim().split(/\s+/) ?? [])
  return SKYLAKEX_FLAGS.every((f) => flags.has(f)) ? 'SkylakeX' : undefined
}

/** Sets OPENBLAS_CORETYPE for this process where the user has not (Linux; elsewhere nothing). */
export function chooseOpenblasCore(env: NodeJS.ProcessEnv = process.env): void {
  if (env.OPENBLAS_CORETYPE) return
  let cpuinfo: string
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  } catch {
    return
  }
  const core = openblasCoreType(cpuinfo)
  if (core) env.OPENBLAS_CORETYPE = core
}
