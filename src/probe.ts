// One bounded check: the readiness route and `tusvault check` both ask "does this answer, and in
// time?" and report the failure's message rather than throwing.
export type ProbeOutcome<T> = { ok: true; value: T } | { ok: false; error: string };

export async function probe<T>(check: () => Promise<T>, timeoutMs: number): Promise<ProbeOutcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    return { ok: true, value: await Promise.race([check(), timeout]) };
  } catch (error) {
    return { ok: false, error: (error as Error)?.message || String(error) || 'failed' };
  } finally {
    clearTimeout(timer);
  }
}
