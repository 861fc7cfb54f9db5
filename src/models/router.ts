/**
 * llama-server's router mode: a llama_cpp instance without a model (no `model`, `hf_repo` or
 * `model_url`) runs llama-server as a router, which lists the models of its `models_dir`, its
 * `models_preset` and llama.cpp's cache, and loads each on request (`models_max` at once).
 *
 * An instance's `preset_ini` is written to <instances_dir>/<name>/preset.ini (0600: presets can
 * hold paths and keys) and given as `--models-preset` unless the instance names one itself, as
 * the original llamactl does.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Config } from '../config/load'
import type { InstanceOptions } from '../instances/options'
import { makeDir, makePrivate, PRIVATE_FILE } from '../store/private'

const MODEL_KEYS = ['model', 'm', 'hf_repo', 'hf', 'hfr', 'model_url', 'mu', 'docker_repo', 'dr']

/** Whether the instance runs llama-server as a router. */
export function isRouter(o: InstanceOptions): boolean {
  if (o.backend_type !== 'llama_cpp') return false
  return !MODEL_KEYS.some((k) => {
    const v = o.backend_options[k]
    return typeof v === 'string' && v !== ''
  })
}

export function presetPath(config: Config, name: string): string {
  return join(config.instances.instances_dir, name, 'preset.ini')
}

/**
 * Writes the preset file when the instance has one and llama-server will read it (run here, not
 * in Docker, without its own models_preset); the arguments to add. A preset emptied or removed
 * since is deleted.
 */
export function presetArgs(config: Config, name: string, o: InstanceOptions): string[] {
  const path = presetPath(config, name)
  const own = o.backend_options.models_preset
  if (o.backend_type !== 'llama_cpp' || o.docker_enabled || !o.preset_ini || (typeof own === 'string' && own)) {
    rmSync(path, { force: true })
    return []
  }
  makeDir(join(config.instances.instances_dir, name))
  writeFileSync(path, o.preset_ini, { mode: PRIVATE_FILE })
  makePrivate(path) // a file an older llamactl left keeps its mode otherwise
  return ['--models-preset', path]
}

/** A model as llama-server's router lists it (GET /models), the fields llamactl reads. */
export interface RouterModel {
  id: string
  status?: { value?: string }
}

/** The `data` of a router's GET /models answer; [] for anything else. */
export function routerModels(body: unknown): RouterModel[] {
  const data = (body as { data?: unknown } | null)?.data
  if (!Array.isArray(data)) return []
  return data.filter((m): m is RouterModel => !!m && typeof (m as RouterModel).id === 'string')
}
