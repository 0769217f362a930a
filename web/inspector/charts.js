// Bar charts of api/activity with uPlot: changes and conflicts per day (a time axis, days with no
// rows filled with zeros) and the lag of each device (one bar per device, labelled below). uPlot
// draws on a canvas and builds its legend with textContent, so the labels may be data.

import uPlot from 'uplot';
import { fill, h } from './dom.js';

const DAY = 86400000;
const HEIGHT = 180;
const charts = new Set();
const INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8];

addEventListener('resize', () => {
  for (const chart of charts) {
    if (!chart.root.isConnected) charts.delete(chart);
    else chart.setSize({ width: width(chart.root.parentNode), height: HEIGHT });
  }
});

const width = (el) => Math.max(200, (el && el.clientWidth) || 400);
const dayLabel = (seconds) => new Date(seconds * 1000).toLocaleDateString(undefined, { timeZone: 'UTC', month: 'short', day: 'numeric' });

/** Every day from since (ms, UTC midnight) for `days` days, each with its count (or 0): [[s], [n]]. */
export function perDay(rows, since, days) {
  const counts = new Map(rows.map((row) => [row.day, row.count]));
  const last = Math.max(since + (days - 1) * DAY, ...rows.map((row) => row.day));
  const xs = [];
  const ys = [];
  for (let day = since; day <= last; day += DAY) {
    xs.push(day / 1000);
    ys.push(counts.get(day) ?? 0);
  }
  return [xs, ys];
}

/** A bar chart into el: xs and ys; with labels, xs are indexes and the x axis shows labels[i]. */
function bars(el, xs, ys, { label, color, labels }) {
  const half = labels ? 0.5 : DAY / 2000;
  const xValue = labels ? (u, i) => (i == null ? '—' : labels[i] ?? '') : (u, s) => (s == null ? '—' : dayLabel(s));
  const x = { label: labels ? 'Device' : 'Day', value: xValue };
  const axisX = { stroke: '#5b6470', grid: { show: false }, ticks: { show: false } };
  if (labels) {
    axisX.splits = (u) => {
      const step = Math.max(1, Math.ceil((xs.length * 90 * uPlot.pxRatio) / u.bbox.width));
      return xs.filter((i) => i % step === 0);
    };
    axisX.values = (u, splits) => splits.map((i) => labels[i] ?? '');
  } else {
    axisX.values = (u, splits) => splits.map(dayLabel);
  }
  const chart = new uPlot(
    {
      width: width(el),
      height: HEIGHT,
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      scales: {
        x: { time: !labels, range: (u, min, max) => [min - half, max + half] },
        y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] },
      },
      axes: [axisX, { stroke: '#5b6470', incrs: INCRS, size: 44, grid: { stroke: '#eef0f3' } }],
      series: [x, { label, fill: `${color}cc`, stroke: color, width: 0, points: { show: false }, paths: uPlot.paths.bars({ size: [0.7, 48], gap: 1 }) }],
    },
    [xs, ys],
    el,
  );
  charts.add(chart);
  return chart;
}

/** A chart card; draw(activity) fills it once api/activity has answered. */
function chartCard(title, testid, draw) {
  const body = h('div', { className: 'chart' }, h('p', { className: 'muted' }, 'Loading…'));
  const box = h('section', { className: 'card', 'data-testid': testid }, h('h2', null, title), body);
  return { box, draw: (activity) => draw(fill(body), activity) };
}

/**
 * The three activity charts. Returns { nodes, draw(activity) }: put the nodes in the document
 * first (the charts take their width from it), then draw.
 * @param {(lag) => string} lagLabel the x label of a deviceLag row
 */
export function activityCharts(lagLabel) {
  const parts = [
    chartCard('Changes per day', 'chart-changes', (el, a) => bars(el, ...perDay(a.changesPerDay, a.since, a.days), { label: 'changes', color: '#3b6fd4' })),
    chartCard('Conflicts per day', 'chart-conflicts', (el, a) => bars(el, ...perDay(a.conflictsPerDay, a.since, a.days), { label: 'conflicts', color: '#d9822b' })),
    chartCard('Device lag (versions behind)', 'chart-lag', (el, a) => {
      if (!a.deviceLag.length) return fill(el, h('p', { className: 'muted' }, 'No devices.'));
      const labels = a.deviceLag.map(lagLabel);
      bars(el, labels.map((_, i) => i), a.deviceLag.map((row) => row.lag), { label: 'lag', color: '#7a5cc7', labels });
    }),
  ];
  return {
    nodes: h('div', { className: 'charts' }, parts.map((part) => part.box)),
    draw: (activity) => parts.forEach((part) => part.draw(activity)),
  };
}
