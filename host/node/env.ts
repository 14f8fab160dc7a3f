// Settings from the environment on Node: a variable is read in one way everywhere (envInteger), so
// that a value it cannot take is an error naming the variable and its range, never a quiet default.

/**
 * The integer in env variable `name`, `min` .. `max` (decimal digits only), or undefined when it is
 * unset or empty. Anything else throws a RangeError naming the variable, its value and the range
 * (`unit` follows the range: "µs", "stamps").
 */
export function envInteger(name: string, min: number, max: number, unit = ""): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = /^[0-9]{1,16}$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) throw new RangeError(`${name}=${JSON.stringify(v)}: an integer ${min} .. ${max}${unit ? ` ${unit}` : ""}`);
  return n;
}

/**
 * The value of env variable `name` when it is one of `choices`, or undefined when it is unset or
 * empty. Anything else throws a RangeError naming the variable, its value and the choices.
 */
export function envChoice<T extends string>(name: string, choices: readonly T[]): T | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  if (!(choices as readonly string[]).includes(v)) throw new RangeError(`${name}=${JSON.stringify(v)}: one of ${choices.join(", ")}`);
  return v as T;
}

/**
 * Env variable `name` as one of `choices` or an integer `min` .. `max` (decimal digits only), or
 * undefined when it is unset or empty. Anything else throws a RangeError naming the variable, its
 * value, the choices and the range.
 */
export function envChoiceOrInteger<T extends string>(name: string, choices: readonly T[], min: number, max: number, unit = ""): T | number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  if ((choices as readonly string[]).includes(v)) return v as T;
  const n = /^[0-9]{1,16}$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) throw new RangeError(`${name}=${JSON.stringify(v)}: ${choices.join(", ")} or an integer ${min} .. ${max}${unit ? ` ${unit}` : ""}`);
  return n;
}
