// `tusvault quota get|set <owner>`: an owner's limits and usage, as GET /api/me/quota and
// PUT /api/admin/quotas/:ownerId answer them (src/db/quota.ts).
import os from 'node:os';
import { parseSize } from '../../config/units.js';
import { getQuota, updateQuota, type QuotaOverrides, type QuotaUsage } from '../../db/quota.js';
import { OwnerIdParams, QuotaUpdate } from '../../http/schemas.js';
import { EXIT, UsageError, parseCommandArgs, positionals, type Command } from '../command.js';
import { cliContext, withDatabase } from '../context.js';
import { bytes, printJson, printLines } from '../format.js';

const help = `Usage: tusvault quota get <owner> [--json]
       tusvault quota set <owner> [--max-bytes <size>] [--max-files <n>] [--max-file-size <size>]
                                  [--monthly-bytes <size>] [--json]

get   prints the owner's limits (their own, or the QUOTA_* defaults) and usage
set   sets the given limits for this owner; the others stay as they are. Sizes as in the
      configuration (500MB, 5GiB, bytes); "default" returns a limit to the QUOTA_* default.
      The change is audited (actor cli:<user>).`;

type LimitKey = keyof QuotaOverrides;
const LIMIT_OPTIONS: Array<[string, LimitKey, 'size' | 'count']> = [
  ['max-bytes', 'maxBytes', 'size'],
  ['max-files', 'maxFiles', 'count'],
  ['max-file-size', 'maxFileSize', 'size'],
  ['monthly-bytes', 'monthlyBytes', 'size'],
];

/** `--max-bytes 5GiB` and the like → the PUT body's fields; "default" → null. Pure. */
export function parseQuotaOptions(values: Record<string, string | boolean | undefined>): QuotaOverrides {
  const overrides: Record<string, number | null> = {};
  for (const [option, key, kind] of LIMIT_OPTIONS) {
    const text = values[option];
    if (typeof text !== 'string') continue;
    if (text.trim().toLowerCase() === 'default') {
      overrides[key] = null;
      continue;
    }
    const value = kind === 'size' ? parseSize(text) : /^\d+$/.test(text.trim()) ? Number(text) : null;
    if (value === null) {
      throw new UsageError(`--${option}=${JSON.stringify(text)}: expected ${kind === 'size' ? 'a size such as 500MB, 5GiB or a number of bytes' : 'a whole number'}, or "default"`, 'quota');
    }
    overrides[key] = value;
  }
  const checked = QuotaUpdate.safeParse(overrides);
  if (!checked.success) throw new UsageError(checked.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`).join('; '), 'quota');
  return checked.data;
}

function describeQuota(quota: QuotaUsage & { ownerId: string }): string[] {
  const limit = (value: number | null, format: (v: number) => string) => (value === null ? 'unlimited' : format(value));
  return [
    `owner            ${quota.ownerId}`,
    `stored           ${bytes(quota.usedBytes)} of ${limit(quota.maxBytes, bytes)} (reserved ${bytes(quota.reservedBytes)})`,
    `files            ${quota.fileCount} of ${limit(quota.maxFiles, String)} (reserved ${quota.reservedFiles})`,
    `largest file     ${limit(quota.maxFileSize, bytes)}`,
    `this month       ${bytes(quota.monthBytes)} of ${limit(quota.monthlyBytes, bytes)} (since ${quota.monthStart})`,
  ];
}

export const quotaCommand: Command = {
  name: 'quota',
  help,
  async run(args) {
    const { values, positionals: rest } = parseCommandArgs('quota', args, {
      json: { type: 'boolean', default: false },
      ...Object.fromEntries(LIMIT_OPTIONS.map(([option]) => [option, { type: 'string' as const }])),
    });
    const [action, ownerId] = positionals('quota', rest, ['get|set', 'owner']);
    if (action !== 'get' && action !== 'set') throw new UsageError(`unknown action ${JSON.stringify(action)}: expected get or set`, 'quota');
    if (!OwnerIdParams.safeParse({ ownerId }).success) {
      throw new UsageError('<owner>: an owner id is 1 to 200 characters of letters, digits and ._:@|+=-', 'quota');
    }
    const overrides = parseQuotaOptions(values);
    if (action === 'get' && Object.keys(overrides).length > 0) throw new UsageError('limits are given to `quota set`, not `quota get`', 'quota');
    if (action === 'set' && Object.keys(overrides).length === 0) {
      throw new UsageError('nothing to set: give at least one of --max-bytes, --max-files, --max-file-size, --monthly-bytes', 'quota');
    }

    const context = cliContext();
    const { quota: defaults } = context.config;
    const quota = await withDatabase(context, ({ db }) =>
      action === 'get' ? getQuota(db, ownerId!, defaults) : updateQuota(db, ownerId!, overrides, defaults, `cli:${os.userInfo().username}`),
    );
    if (values.json) printJson(quota);
    else printLines(describeQuota(quota));
    return EXIT.ok;
  },
};
