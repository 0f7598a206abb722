// The server's errors in words people understand. The server answers every error with JSON
// {"error": {"code", "message", ...details}}; the code picks the explanation, the server's own
// message and details fill in the specifics. Pure, so it can be tested in Node.
import { formatBytes, formatLimit } from './format.js';

export interface ServerError {
  code: string;
  message: string;
  [detail: string]: unknown;
}

/** The `error` object of a response body, if the body is one of ours. */
export function parseServerError(body: string | null | undefined): ServerError | null {
  if (!body) return null;
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    const error = parsed?.error as Partial<ServerError> | undefined;
    if (error && typeof error.code === 'string') {
      return { ...error, code: error.code, message: typeof error.message === 'string' ? error.message : '' };
    }
  } catch {
    // not JSON: fall through
  }
  return null;
}

const size = (value: unknown): string | null => (typeof value === 'number' ? formatBytes(value) : null);

/** One sentence for a person, from an HTTP status and the server's error (if any). */
export function friendlyError(status: number | null, error: ServerError | null): string {
  const code = error?.code ?? '';
  const server = error?.message ? error.message.replace(/\.$/, '') : '';
  switch (code) {
    case 'QUOTA_EXCEEDED': {
      const available = size(error?.available);
      return `Not enough storage left in your quota${available ? ` (${available} free)` : ''}. Delete some files or ask for a larger quota.`;
    }
    case 'QUOTA_FILES_EXCEEDED':
      return `You have reached the maximum number of files${typeof error?.limit === 'number' ? ` (${error.limit})` : ''}. Delete some files first.`;
    case 'QUOTA_MONTHLY_EXCEEDED':
      return 'You have used up this month’s upload allowance. It resets at the start of next month.';
    case 'QUOTA_FILE_SIZE_EXCEEDED': {
      const limit = typeof error?.limit === 'number' ? formatLimit(error.limit) : null;
      return `This file is larger than you are allowed to upload${limit ? ` (at most ${limit} per file)` : ''}.`;
    }
    case 'FILE_TOO_LARGE':
      return `This file is too large: ${server || 'it exceeds the size limit for its type'}.`;
    case 'TYPE_NOT_ALLOWED':
      return `This type of file is not accepted: ${server || 'choose an FSEQ, XSQ or audio file'}.`;
    case 'MIME_TYPE_MISMATCH':
      return `The file’s type does not match its name: ${server}.`;
    case 'INVALID_FILENAME':
      return `The file name cannot be used: ${server || 'rename the file and try again'}.`;
    case 'UNAUTHORIZED':
      return 'You are not signed in: paste a valid access token above.';
    case 'TOKEN_EXPIRED':
      return 'Your access token has expired: paste a new one above.';
    case 'FORBIDDEN':
      return 'You are not allowed to do this.';
    case 'NOT_FOUND':
      return 'This upload no longer exists on the server (it may have expired or been deleted). Remove it and add the file again.';
    case 'UPLOAD_EXPIRED':
      return 'This upload expired before it was finished. Remove it and add the file again.';
    case 'UPLOAD_LOCKED':
      return 'The upload is busy in another tab or request; try again in a moment.';
    case 'FILE_NOT_READY':
      return 'The file is not ready yet; only ready files can be downloaded.';
    default:
      break;
  }
  if (status === 401) return 'You are not signed in: paste a valid access token above.';
  if (status === 413) return `This file is too large${server ? `: ${server}` : ''}.`;
  if (status === 415) return `This type of file is not accepted${server ? `: ${server}` : ''}.`;
  if (status === 429) return 'The server is busy; the upload will be retried.';
  if (status !== null && status >= 500) return `The server had a problem${server ? ` (${server})` : ''}; try again in a moment.`;
  if (status === 0 || status === null) return 'The connection to the server was lost. Check your network; the upload resumes where it stopped when you retry.';
  return server ? `${server.charAt(0).toUpperCase()}${server.slice(1)}.` : `The request failed (HTTP ${status}).`;
}
