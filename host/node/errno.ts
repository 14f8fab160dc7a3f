// errno numbers as Node names them (EMSGSIZE, ENOBUFS, ...), for errors the addon returns as numbers.
import { constants } from "node:os";

const names = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!names.has(n)) names.set(n, name);

/** The errno's name (`E...`), or `errno N` when Node does not know it. */
export function errnoName(n: number): string {
  return names.get(n) ?? `errno ${n}`;
}
