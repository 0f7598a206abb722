// `tusvault files ls|show`: files as the files API lists them (src/db/files.ts), for an operator:
// every owner's, or one owner's with --owner.
import { KINDS, type Kind } from '../../config/index.js';
import { toFileRecord, type FileRecordData } from '../../db/file-record.js';
import { listFilesForAdmin } from '../../db/files.js';
import { findBlob } from '../../db/processing.js';
import { UPLOAD_STATUSES, type UploadStatus } from '../../db/schema.js';
import { findUpload } from '../../db/uploads.js';
import { OwnerIdParams, UploadId } from '../../http/schemas.js';
import { EXIT, UsageError, parseCommandArgs, positionals, type Command } from '../command.js';
import { cliContext, withDatabase } from '../context.js';
import { bytes, printJson, printLines, table } from '../format.js';

const LISTED_STATUSES = UPLOAD_STATUSES.filter((s): s is Exclude<UploadStatus, 'deleted'> => s !== 'deleted');

const help = `Usage: tusvault files ls [--owner <owner>] [--status <status>] [--kind <kind>] [--limit <n>] [--json]
       tusvault files show <id> [--json]

ls     files of every owner, newest first (an operator's view; deleted files are left out)
         --owner    only this owner's files
         --status   ${LISTED_STATUSES.join(', ')}
         --kind     ${KINDS.join(', ')}
         --limit    how many (1 to 1000, default 50)
show   one file's record (any owner's, deleted ones too), as GET /api/files/:id answers it`;

function oneOf<T extends string>(option: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${option}=${JSON.stringify(value)}: expected one of ${allowed.join(', ')}`, 'files');
  return value as T;
}

function describeFile(file: FileRecordData): string[] {
  return [
    `id          ${file.id}`,
    `owner       ${file.ownerId}`,
    `name        ${file.filename}`,
    `kind        ${file.kind} (${file.mimeType ?? 'type unknown'})`,
    `size        ${bytes(file.size)}`,
    `status      ${file.status}${file.rejectionReason ? ` — ${file.rejectionReason}` : ''}${file.failureReason ? ` — ${file.failureReason}` : ''}`,
    `sha256      ${file.sha256 ?? '-'}${file.deduplicated ? ' (de-duplicated)' : ''}`,
    `scan        ${file.scan.status}${file.scan.signature ? ` — ${file.scan.signature}` : ''}`,
    `created     ${file.createdAt}`,
    `ready       ${file.readyAt ?? '-'}`,
    `transport   ${file.transport}`,
  ];
}

async function list(args: string[]): Promise<number> {
  const { values, positionals: rest } = parseCommandArgs('files', args, {
    owner: { type: 'string' },
    status: { type: 'string' },
    kind: { type: 'string' },
    limit: { type: 'string', default: '50' },
    json: { type: 'boolean', default: false },
  });
  positionals('files', rest, []);
  const status = oneOf('status', values.status, LISTED_STATUSES);
  const kind = oneOf<Kind>('kind', values.kind, KINDS);
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError('--limit: expected a whole number from 1 to 1000', 'files');

  const ownerId = values.owner;
  if (ownerId !== undefined && !OwnerIdParams.safeParse({ ownerId }).success) throw new UsageError('--owner: not an owner id', 'files');

  const page = await withDatabase(cliContext(), ({ db }) => listFilesForAdmin(db, { ownerId, status, kind, limit }));
  const files = page.rows.map(toFileRecord);
  if (values.json) {
    printJson(files);
  } else if (files.length === 0) {
    printLines([`no files${ownerId === undefined ? '' : ` for ${ownerId}`}${status ? ` with status ${status}` : ''}${kind ? ` of kind ${kind}` : ''}`]);
  } else {
    printLines(
      table(
        ['ID', 'OWNER', 'STATUS', 'KIND', 'SIZE', 'CREATED', 'NAME'],
        files.map((f) => [f.id, f.ownerId, f.status, f.kind, bytes(f.size), f.createdAt, f.filename]),
      ),
    );
    if (page.next) printLines([`… more: raise --limit (showing ${files.length})`]);
  }
  return EXIT.ok;
}

async function show(args: string[]): Promise<number> {
  const { values, positionals: rest } = parseCommandArgs('files', args, { json: { type: 'boolean', default: false } });
  const [id] = positionals('files', rest, ['id']);
  if (!UploadId.safeParse(id).success) throw new UsageError(`<id>: an upload id is 32 hexadecimal characters`, 'files');
  const record = await withDatabase(cliContext(), async ({ db }) => {
    const upload = await findUpload(db, id!);
    if (!upload) return null;
    const blob = upload.blobSha256 ? ((await findBlob(db, upload.blobSha256)) ?? null) : null;
    return toFileRecord({ upload, blob });
  });
  if (!record) {
    process.stderr.write(`no file with id ${id}\n`);
    return EXIT.failed;
  }
  if (values.json) printJson(record);
  else printLines(describeFile(record));
  return EXIT.ok;
}

export const filesCommand: Command = {
  name: 'files',
  help,
  async run(args) {
    const [action, ...rest] = args;
    if (action === 'ls') return list(rest);
    if (action === 'show') return show(rest);
    throw new UsageError(action === undefined ? 'missing action: ls or show' : `unknown action ${JSON.stringify(action)}: expected ls or show`, 'files');
  },
};
