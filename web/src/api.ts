// Talking to the server: the public config, the access token (AUTH_MODE=jwt; kept in this tab's
// sessionStorage only), JSON requests with friendly errors, and Server-Sent Events read with
// fetch() — EventSource cannot send an Authorization header.
import { friendlyError, parseServerError, type ServerError } from './messages.js';

export interface KindLimit {
  kind: string;
  extensions: string[];
  maxSize: number;
}

export interface PublicConfig {
  authMode: 'none' | 'jwt';
  tusPath: string;
  maxUploadSize: number;
  allowedKinds: string[];
  limits: KindLimit[];
  /** Files may go straight to the storage bucket (STORAGE=s3). */
  directUploads: boolean;
}

const TOKEN_KEY = 'tusvault.token';

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lives as long as the page
  }
}

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** An API error with the sentence to show and the server's code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly serverError: ServerError | null,
  ) {
    super(friendlyError(status, serverError));
    this.name = 'ApiError';
  }
  get code(): string | null {
    return this.serverError?.code ?? null;
  }
}

/** A URL relative to the page (so the page also works under a path prefix). */
export function apiUrl(path: string): string {
  return new URL(path.replace(/^\//, ''), document.baseURI).toString();
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(apiUrl(path), {
      ...init,
      headers: { Accept: 'application/json', ...authHeaders(), ...(init.headers as Record<string, string> | undefined) },
    });
  } catch {
    throw new ApiError(0, null);
  }
  if (!response.ok) throw new ApiError(response.status, parseServerError(await response.text().catch(() => '')));
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export async function loadConfig(): Promise<PublicConfig> {
  return api<PublicConfig>('api/config');
}

export interface SseHandlers {
  onEvent(event: string, data: unknown): void;
  onOpen(): void;
  onDisconnect(error: ApiError): void;
}

/**
 * Follows an event stream, reconnecting with backoff until stopped. A 401 stops it (a new token
 * starts a new stream).
 */
export function followEvents(path: string, handlers: SseHandlers): () => void {
  const controller = new AbortController();
  let delay = 1000;
  const run = async () => {
    while (!controller.signal.aborted) {
      let failure: ApiError;
      try {
        const response = await fetch(apiUrl(path), {
          headers: { Accept: 'text/event-stream', ...authHeaders() },
          signal: controller.signal,
          cache: 'no-store',
        });
        if (!response.ok || !response.body) {
          failure = new ApiError(response.status, parseServerError(await response.text().catch(() => '')));
          handlers.onDisconnect(failure);
          if (response.status === 401 || response.status === 403) return;
        } else {
          delay = 1000;
          handlers.onOpen();
          await readStream(response.body, handlers.onEvent);
          if (controller.signal.aborted) return;
          handlers.onDisconnect(new ApiError(0, null));
        }
      } catch {
        if (controller.signal.aborted) return;
        handlers.onDisconnect(new ApiError(0, null));
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15_000);
    }
  };
  void run();
  return () => controller.abort();
}

async function readStream(body: ReadableStream<Uint8Array>, onEvent: (event: string, data: unknown) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
    let split: number;
    while ((split = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, split);
      buffer = buffer.slice(split + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length === 0) continue;
      try {
        onEvent(event, JSON.parse(data.join('\n')));
      } catch {
        // a malformed event is skipped, the stream goes on
      }
    }
  }
}
