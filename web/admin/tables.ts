// Tables the dashboard fills: plain rows, and categorical breakdowns as a table whose last column
// is a <meter> (each row's share of the largest), readable by screen readers and on a phone.

/** One row per entry; with none, one row saying `empty` (when given) across the columns. */
export function fillRows(body: HTMLTableSectionElement, cells: string[][], empty?: string): void {
  if (cells.length === 0 && empty !== undefined) {
    const columns = body.closest('table')?.querySelectorAll('thead th').length ?? 1;
    const row = document.createElement('tr');
    row.append(Object.assign(document.createElement('td'), { textContent: empty, colSpan: columns, className: 'muted' }));
    body.replaceChildren(row);
    return;
  }
  body.replaceChildren(
    ...cells.map((row) => {
      const tr = document.createElement('tr');
      for (const text of row) tr.append(Object.assign(document.createElement('td'), { textContent: text }));
      return tr;
    }),
  );
}

export interface BarRow {
  cells: string[];
  value: number;
  /** What the bar measures, spoken with its value ("bob: 2.1 MB"). */
  label: string;
}

export function fillBars(body: HTMLTableSectionElement, rows: BarRow[], empty: string): void {
  if (rows.length === 0) {
    fillRows(body, [], empty);
    return;
  }
  const max = Math.max(1, ...rows.map((row) => row.value));
  fillRows(body, rows.map((row) => row.cells));
  rows.forEach((row, i) => {
    const meter = Object.assign(document.createElement('meter'), { min: 0, max, value: row.value });
    meter.setAttribute('aria-label', row.label);
    const cell = document.createElement('td');
    cell.className = 'share';
    cell.append(meter);
    body.rows[i]!.append(cell);
  });
}
