// The pre-create hook (PRE_CREATE_HOOK_URL): before an upload is created, by any protocol (tus,
// IETF draft, direct-to-bucket), the application may accept it (optionally attaching metadata of
// its own) or refuse it. The hook returns a decision; `admitUpload` turns a refusal into the
// client's error, so every creation path applies the same rule.
import type { Kind } from '../config/index.js';

export type UploadProtocol = 'tus' | 'ietf' | 's3-direct';

/** What the application is told about an upload about to be created. */
export interface PreCreateRequest {
  owner: string;
  filename: string | null;
  size: number | null;
  mimeType: string | null;
  kind: Kind;
  metadata: Record<string, string>;
  protocol: UploadProtocol;
}

export type PreCreateDecision =
  | { action: 'accept'; metadata?: Record<string, unknown> }
  | { action: 'refuse'; status: number; code: string; message: string; retryAfter?: number };

export type PreCreateHook = (request: PreCreateRequest) => Promise<PreCreateDecision>;

/** No PRE_CREATE_HOOK_URL: every creation is accepted as is. */
export const acceptAll: PreCreateHook = async () => ({ action: 'accept' });

/**
 * Asks `hook` about a creation: resolves with the application's metadata (null when it attached
 * none), or throws the AppError the client gets for a refusal.
 */
export async function admitUpload(hook: PreCreateHook, request: PreCreateRequest): Promise<Record<string, unknown> | null> {
  const decision = await hook(request);
  if (decision.action === 'accept') return decision.metadata ?? null;
  // TODO(pre-create helper): map the refusal to AppError (403 UPLOAD_REFUSED / 503 with Retry-After).
  throw new Error(decision.message);
}
