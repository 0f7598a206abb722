// Reading the server's Prometheus metrics in tests.

/** The /metrics text of a server. */
export async function scrape(baseUrl: string): Promise<string> {
  return (await fetch(`${baseUrl}/metrics`)).text();
}

/** A sample's value in a Prometheus text exposition, by `name` or `name{labels}` as written there (NaN when absent). */
export function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : Number.NaN;
}

/** A counter's value: a labelled series appears only once incremented, so absent counts as 0. */
export function counter(text: string, series: string): number {
  const value = metric(text, series);
  return Number.isNaN(value) ? 0 : value;
}
