// A minimal Server-Sent Events reader over fetch (what a browser's fetch-based client does).
export interface SseEvent {
  event: string;
  data: unknown;
}

export async function readEvents(
  url: string,
  headers: Record<string, string>,
  onEvent: (event: SseEvent) => void,
  signal?: AbortSignal,
): Promise<{ status: number; contentType: string | null; ended: boolean }> {
  const response = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers }, ...(signal ? { signal } : {}) });
  if (!response.ok || !response.body) return { status: response.status, contentType: response.headers.get('content-type'), ended: true };
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let split: number;
      while ((split = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, split);
        buffer = buffer.slice(split + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length > 0) onEvent({ event, data: JSON.parse(data.join('\n')) });
      }
    }
  } catch (error) {
    if ((error as Error).name !== 'AbortError') throw error;
    return { status: response.status, contentType: response.headers.get('content-type'), ended: false };
  }
  return { status: response.status, contentType: response.headers.get('content-type'), ended: true };
}
