// The file record clients see (DESIGN.md: GET /api/files/:id). Built in src/db/file-record.ts (the
// webhook task builds the same record); the assignment below checks it against the API schema.
import type { z } from 'zod';
import type { FileRow } from '../db/files.js';
import { toFileRecord as build } from '../db/file-record.js';
import type { FileRecord as FileRecordSchema } from './schemas.js';

export type FileRecord = z.output<typeof FileRecordSchema>;

export const toFileRecord: (row: FileRow) => FileRecord = build;
