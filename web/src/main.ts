// The upload page: asks the server how it is configured (GET /api/config), asks for a token when
// AUTH_MODE=jwt, then shows the uploader and the owner's files, live.
import './styles.css';
import { api, ApiError, getToken, loadConfig, setToken, type PublicConfig } from './api.js';
import { FileList } from './file-list.js';
import { createUploader } from './uploader.js';

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element as T;
}

function showFatal(message: string): void {
  const box = byId('fatal');
  box.textContent = message;
  box.hidden = false;
}

/** Problems with the files being uploaded, in words, under the upload area; each can be dismissed. */
function createReporter(container: HTMLUListElement) {
  const entries = new Map<string, HTMLLIElement>();
  const remove = (id: string) => {
    entries.get(id)?.remove();
    entries.delete(id);
    container.hidden = entries.size === 0;
  };
  return (file: { id: string; name: string }, message: string | null) => {
    remove(file.id);
    if (!message) return;
    const item = document.createElement('li');
    const name = document.createElement('strong');
    name.textContent = file.name;
    const text = message.startsWith(`${file.name}: `) ? message.slice(file.name.length + 2) : message;
    const body = document.createElement('span');
    body.append(name, ` — ${text.charAt(0).toUpperCase()}${text.slice(1)}`);
    const dismiss = document.createElement('button');
    dismiss.type = 'button';
    dismiss.className = 'dismiss';
    dismiss.textContent = '×';
    dismiss.setAttribute('aria-label', `Dismiss the message about ${file.name}`);
    dismiss.title = 'Dismiss';
    dismiss.addEventListener('click', () => {
      remove(file.id);
      document.getElementById('upload-title')?.focus();
    });
    item.append(body, dismiss);
    item.dataset.fileId = file.id;
    container.append(item);
    entries.set(file.id, item);
    container.hidden = false;
  };
}

function setupToken(config: PublicConfig, list: FileList): { onUnauthorized(error: ApiError): void } {
  const section = byId('auth');
  const form = byId<HTMLFormElement>('token-form');
  const input = byId<HTMLInputElement>('token');
  const status = byId('token-status');
  const forget = byId<HTMLButtonElement>('token-forget');

  const setStatus = (text: string, kind: 'ok' | 'error' | 'info') => {
    status.textContent = text;
    status.dataset.kind = kind;
  };

  if (config.authMode !== 'jwt') {
    section.hidden = true;
    list.start();
    return { onUnauthorized: () => {} };
  }
  section.hidden = false;

  const check = async () => {
    try {
      const me = await api<{ ownerId: string }>('api/me/quota');
      setStatus(`Signed in as ${me.ownerId}.`, 'ok');
      forget.hidden = false;
      list.start();
    } catch (error) {
      const apiError = error instanceof ApiError ? error : new ApiError(0, null);
      setStatus(apiError.status === 401 ? `This token was not accepted. ${apiError.message}` : apiError.message, 'error');
      if (apiError.status === 401) input.setAttribute('aria-invalid', 'true');
    }
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = input.value.trim().replace(/^Bearer\s+/i, '');
    input.removeAttribute('aria-invalid');
    if (!value) {
      setStatus('Paste your access token first.', 'error');
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    setToken(value);
    list.stop();
    list.clear();
    setStatus('Checking the token…', 'info');
    void check();
  });
  forget.addEventListener('click', () => {
    setToken(null);
    input.value = '';
    forget.hidden = true;
    list.stop();
    list.clear();
    setStatus('Token forgotten. Paste a token to see and upload your files.', 'info');
    input.focus();
  });

  const saved = getToken();
  if (saved) {
    input.value = saved;
    setStatus('Checking the saved token…', 'info');
    void check();
  } else {
    setStatus('Paste the access token you were given to see and upload your files.', 'info');
  }

  return {
    onUnauthorized: (error) => {
      setStatus(error.message, 'error');
      input.setAttribute('aria-invalid', 'true');
    },
  };
}

async function main(): Promise<void> {
  let config: PublicConfig;
  try {
    config = await loadConfig();
  } catch (error) {
    showFatal(`Could not reach the server: ${(error as Error).message}`);
    return;
  }

  let unauthorized: (error: ApiError) => void = () => {};
  const list = new FileList(
    {
      list: byId<HTMLUListElement>('files'),
      empty: byId('files-empty'),
      error: byId('files-error'),
      live: byId('live'),
      more: byId<HTMLButtonElement>('files-more'),
      quota: byId('quota'),
      announcer: byId('announcer'),
    },
    (error) => unauthorized(error),
  );

  createUploader({
    config,
    target: byId('uppy'),
    report: createReporter(byId<HTMLUListElement>('upload-errors')),
    directSwitch: { container: byId('direct-switch'), input: byId<HTMLInputElement>('direct') },
  });
  unauthorized = setupToken(config, list).onUnauthorized;
  document.body.dataset.ready = 'true';
}

void main();
