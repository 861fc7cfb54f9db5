/**
 * What a model name reaches: every instance answers to its name and its aliases, and no name
 * reaches two instances. The alias index makes routing a lookup, not a walk over every instance.
 */
import { Conflict } from '../errors'

const q = JSON.stringify

export class Names {
  /** alias → the instance that has it */
  private owner = new Map<string, string>()

  constructor(
    private instances: { has(name: string): boolean },
    /** Names held elsewhere (remote nodes' instances): refuses one taken there too. */
    private elsewhere: (name: string, aliases: readonly string[], creating: boolean) => void = () => {},
  ) {}

  /**
   * The instance a request's model names: an instance name, else the instance with that alias.
   * Anything else comes back as it is, so the caller's not-found names what was asked for.
   */
  resolve(model: string): string {
    return this.instances.has(model) ? model : (this.owner.get(model) ?? model)
  }

  /**
   * Refuses (409) a name or alias another instance already answers to. Called after the last
   * await of a create or update, so nothing changes between the check and `take`.
   */
  check(name: string, aliases: readonly string[], creating: boolean) {
    const holder = this.owner.get(name)
    if (creating && holder !== undefined) throw new Conflict(`${q(name)} is already an alias of instance ${q(holder)}`)
    for (const a of aliases) {
      if (this.instances.has(a)) throw new Conflict(`aliases: ${q(a)} is the name of instance ${q(a)}`)
      const other = this.owner.get(a)
      if (other !== undefined && other !== name) throw new Conflict(`aliases: ${q(a)} is already an alias of instance ${q(other)}`)
    }
    if (creating && aliases.includes(name)) throw new Conflict(`aliases: ${q(name)} is the instance's own name`)
    this.elsewhere(name, aliases, creating)
  }

  /** The instance's aliases are now these (and no others). */
  take(name: string, aliases: readonly string[] = []) {
    this.drop(name)
    for (const a of aliases) this.owner.set(a, name)
  }

  /** The instance is gone: its aliases are free. */
  drop(name: string) {
    for (const [a, n] of this.owner) if (n === name) this.owner.delete(a)
  }
}

/** A create's name: not one an instance has (or had, while it is being deleted), and room under max_instances (-1: no limit). */
export function refuseNew(instances: ReadonlyMap<string, { disposed: boolean }>, name: string, max: number) {
  const existing = instances.get(name)
  if (existing) throw new Conflict(`instance ${q(name)} ${existing.disposed ? 'is being deleted; try again when it is gone' : 'already exists'}`)
  if (max >= 0 && instances.size >= max) throw new Conflict(`max_instances (${max}) reached; delete an instance or raise the limit`)
}
