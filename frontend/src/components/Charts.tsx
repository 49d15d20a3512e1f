/** Small hand-made SVG charts, coloured by CSS variables (light and dark). */

import { formatPercent } from "../lib/format";

export interface Segment {
  label: string;
  value: number;
  color: string; // a CSS colour, usually var(--chart-n)
}

/** Each segment's share and where it starts on the circle (0..1). */
export function arcs(segments: Segment[]): { start: number; share: number }[] {
  const total = segments.reduce((s, x) => s + Math.max(0, x.value), 0);
  let start = 0;
  return segments.map((x) => {
    const share = total > 0 ? Math.max(0, x.value) / total : 0;
    const arc = { start, share };
    start += share;
    return arc;
  });
}

export function DonutChart({
  title,
  segments,
  center,
  format,
}: {
  title: string;
  segments: Segment[];
  center: string;
  format: (n: number) => string;
}) {
  const r = 40;
  const circumference = 2 * Math.PI * r;
  const parts = arcs(segments);
  const total = segments.reduce((s, x) => s + Math.max(0, x.value), 0);
  const summary = segments.map((s, i) => `${s.label}: ${format(s.value)} (${formatPercent(parts[i].share)})`).join(", ");
  return (
    <figure className="chart donut">
      <svg viewBox="0 0 100 100" role="img" aria-label={`${title}: ${total > 0 ? summary : "no data yet"}`}>
        <circle cx="50" cy="50" r={r} fill="none" stroke="var(--chart-track)" strokeWidth="14" />
        {segments.map((s, i) =>
          parts[i].share > 0 ? (
            <circle
              key={s.label}
              cx="50"
              cy="50"
              r={r}
              fill="none"
              stroke={s.color}
              strokeWidth="14"
              strokeDasharray={`${parts[i].share * circumference} ${circumference}`}
              strokeDashoffset={-parts[i].start * circumference}
              transform="rotate(-90 50 50)"
            >
              <title>{`${s.label}: ${format(s.value)}`}</title>
            </circle>
          ) : null,
        )}
        <text x="50" y="54" textAnchor="middle" className="chart-center">
          {center}
        </text>
      </svg>
      <figcaption>
        <span className="chart-title">{title}</span>
        <ul className="legend">
          {segments.map((s, i) => (
            <li key={s.label}>
              <span className="swatch" style={{ background: s.color }} aria-hidden="true" />
              {s.label}: <strong>{format(s.value)}</strong>
              {total > 0 ? <span className="muted"> ({formatPercent(parts[i].share)})</span> : null}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}

export function BarChart({
  title,
  bars,
  format,
}: {
  title: string;
  bars: Segment[];
  format: (n: number) => string;
}) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const rowH = 26;
  const height = bars.length * rowH;
  return (
    <figure className="chart bars">
      <figcaption className="chart-title">{title}</figcaption>
      <svg
        viewBox={`0 0 300 ${height}`}
        role="img"
        aria-label={`${title}: ${bars.map((b) => `${b.label} ${format(b.value)}`).join(", ")}`}
        preserveAspectRatio="none"
        style={{ height: `${height}px` }}
      >
        {bars.map((b, i) => (
          <g key={b.label} transform={`translate(0 ${i * rowH})`}>
            <rect x="0" y="3" width="300" height={rowH - 8} rx="4" fill="var(--chart-track)" />
            <rect x="0" y="3" width={Math.max(2, (b.value / max) * 300)} height={rowH - 8} rx="4" fill={b.color}>
              <title>{`${b.label}: ${format(b.value)}`}</title>
            </rect>
          </g>
        ))}
      </svg>
      <ul className="legend">
        {bars.map((b) => (
          <li key={b.label}>
            <span className="swatch" style={{ background: b.color }} aria-hidden="true" />
            {b.label}: <strong>{format(b.value)}</strong>
          </li>
        ))}
      </ul>
    </figure>
  );
}

export function StatusPill({ status }: { status: string }) {
  const tone = ["up", "healthy", "ok", "reachable", "enabled"].includes(status)
    ? "good"
    : ["degraded", "unknown", "disabled", "checking"].includes(status)
      ? "warn"
      : "bad";
  return <span className={`pill ${tone}`}>{status}</span>;
}
