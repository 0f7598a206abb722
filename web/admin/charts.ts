// Time-series charts with uPlot (canvas): one or more lines over the window's buckets. Empty
// buckets of a rate or a latency are null: a gap, not a zero.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Line {
  label: string;
  values: Array<number | null>;
  color: string;
}

export interface Chart {
  /** Bucket starts, in seconds since the epoch. */
  times: number[];
  lines: Line[];
  format(value: number): string;
  /** The y axis' fixed top (a rate's 1), else it follows the data. */
  max?: number;
}

const HEIGHT = 220;
const charts = new Map<HTMLElement, uPlot>();

export function drawChart(container: HTMLElement, chart: Chart): void {
  charts.get(container)?.destroy();
  const plot = new uPlot(
    {
      width: Math.max(280, container.clientWidth),
      height: HEIGHT,
      series: [
        {},
        ...chart.lines.map((line) => ({
          label: line.label,
          stroke: line.color,
          fill: chart.lines.length === 1 ? `${line.color}33` : undefined,
          width: 2,
          // Filled points, so a lone bucket with data still shows.
          points: { show: true, size: 8, fill: line.color },
          value: (_u: uPlot, v: number | null) => (v == null ? '–' : chart.format(v)),
        })),
      ],
      axes: [{}, { values: (_u, ticks) => ticks.map((t) => chart.format(t)), size: 70 }],
      // Headroom above the highest point, so it is not drawn on the frame.
      scales: { y: { range: (_u, _min, max) => [0, chart.max ?? Math.max(1, max * 1.1)] } },
      legend: { show: true },
    },
    [chart.times, ...chart.lines.map((line) => line.values)] as uPlot.AlignedData,
    container,
  );
  if (!charts.has(container)) {
    // Follow the container's width (a hidden dashboard shown, a phone turned).
    new ResizeObserver(() => {
      const current = charts.get(container);
      if (current && container.clientWidth > 0) current.setSize({ width: container.clientWidth, height: HEIGHT });
    }).observe(container);
  }
  charts.set(container, plot);
}
