// What a command of the `tusvault` command line is, and how it fails. Each command parses its own
// arguments with node:util's parseArgs and calls the same service functions a route does.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit codes (sysexits.h where one fits): scripts tell a usage mistake from a broken setup. */
export const EXIT = { ok: 0, failed: 1, usage: 64, config: 78 } as const;

/** A mistake in how the command was called: printed with a pointer to its help. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Command {
  name: string;
  /** The full help text, printed by `tusvault <name> --help`. */
  help: string;
  run(args: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with strict checking; its errors (unknown option, missing value) become UsageErrors. */
export function parseCommandArgs<T extends Options>(command: string, args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message, command);
  }
}

/** Exactly `count` positionals, named in the message when missing or extra. */
export function positionals(command: string, values: string[], names: string[]): string[] {
  if (values.length < names.length) throw new UsageError(`missing <${names[values.length]}>`, command);
  if (values.length > names.length) throw new UsageError(`unexpected argument ${JSON.stringify(values[names.length])}`, command);
  return values;
}
