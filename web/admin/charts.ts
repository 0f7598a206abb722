// Time-series charts with uPlot (canvas): one series over the window's buckets.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  label: string;
  /** Bucket starts, in seconds since the epoch. */
  times: number[];
  values: number[];
  format(value: number): string;
}

const charts = new Map<HTMLElement, uPlot>();

export function drawChart(container: HTMLElement, series: Series): void {
  charts.get(container)?.destroy();
  const width = Math.max(280, container.clientWidth);
  const chart = new uPlot(
    {
      width,
      height: 220,
      series: [
        {},
        { label: series.label, stroke: '#2f6fde', fill: '#2f6fde33', width: 2, points: { show: true, size: 6 }, value: (_u, v) => (v == null ? '–' : series.format(v)) },
      ],
      axes: [{}, { values: (_u, ticks) => ticks.map((t) => series.format(t)), size: 70 }],
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      legend: { show: true },
    },
    [series.times, series.values],
    container,
  );
  if (!charts.has(container)) {
    // Follow the container's width (a hidden dashboard shown, a phone turned).
    new ResizeObserver(() => {
      const current = charts.get(container);
      if (current && container.clientWidth > 0) current.setSize({ width: container.clientWidth, height: 220 });
    }).observe(container);
  }
  charts.set(container, chart);
}
