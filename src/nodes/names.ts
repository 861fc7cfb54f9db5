/**
 * Instance names and aliases are unique across every node: a model name reaches one instance,
 * wherever it runs. One check for both sides, given who answers to what.
 */
import { Conflict } from '../errors'

export interface Holder {
  name: string
  aliases: readonly string[]
  /** Where it is, for the message: `on node "w1"`, or '' for this llamactl. */
  where: string
}

/**
 * Throws the 409 for `name` (when creating) and `aliases` against every other holder; `self`
 * is the instance being updated, which may keep its own name and aliases.
 */
export function refuseTaken(holders: Iterable<Holder>, name: string, aliases: readonly string[], creating: boolean) {
  for (const h of holders) {
    const at = h.where ? ` ${h.where}` : ''
    if (creating && h.name === name) throw new Conflict(`instance ${JSON.stringify(name)} already exists${at}`)
    const other = h.name !== name
    if (creating && h.aliases.includes(name)) throw new Conflict(`${JSON.stringify(name)} is already an alias of instance ${JSON.stringify(h.name)}${at}`)
    for (const a of aliases) {
      if (h.name === a) throw new Conflict(`aliases: ${JSON.stringify(a)} is the name of instance ${JSON.stringify(h.name)}${at}`)
      if (other && h.aliases.includes(a)) throw new Conflict(`aliases: ${JSON.stringify(a)} is already an alias of instance ${JSON.stringify(h.name)}${at}`)
    }
  }
  if (creating && aliases.includes(name)) throw new Conflict(`aliases: ${JSON.stringify(name)} is the instance's own name`)
}
