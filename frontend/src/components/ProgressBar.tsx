import { formatBytes, formatPercent } from "../lib/format";

export function ProgressBar({ loaded, total, label }: { loaded: number; total: number; label: string }) {
  const ratio = total > 0 ? Math.min(1, loaded / total) : 1;
  return (
    <div className="progress">
      <div
        className="progress-track"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(ratio * 100)}
        aria-valuetext={`${formatPercent(ratio)} (${formatBytes(loaded)} of ${formatBytes(total)})`}
      >
        <div className="progress-fill" style={{ width: `${ratio * 100}%` }} />
      </div>
      <span className="progress-text">
        {formatPercent(ratio)} · {formatBytes(loaded)} / {formatBytes(total)}
      </span>
    </div>
  );
}
