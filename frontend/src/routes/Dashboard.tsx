import { api, UI_HEADERS, unwrap } from "../api/client";
import { describeTest, isMissingApi, listUpstreams, testUpstream, type Upstream } from "../api/upstreams";
import { BarChart, DonutChart, StatusPill } from "../components/Charts";
import { Async, Empty, ErrorBox } from "../components/States";
import { formatBytes, formatPercent } from "../lib/format";
import { useAuth } from "../lib/auth";
import { useLoad, type Loaded } from "../lib/useLoad";

interface Health {
  status: string;
  version?: string;
  database?: { status: string; backend?: string; error?: string };
  storage?: { status: string; backend?: string; error?: string };
  cache?: { status: string; backend?: string; hits?: number; misses?: number; enabled?: boolean; connected?: boolean };
  [key: string]: unknown;
}

async function health(): Promise<Health> {
  // /health answers 503 with the same body when a backend is down.
  const r = await fetch("/health", { headers: { Accept: "application/json", ...UI_HEADERS } });
  return (await r.json()) as Health;
}

export function hitRate(hits: number, misses: number): number {
  const total = hits + misses;
  return total > 0 ? hits / total : NaN;
}

/** Checks each enabled upstream once (administrators' connection test). */
function UpstreamRow({ upstream }: { upstream: Upstream }) {
  const check = useLoad(
    () => (upstream.enabled === false ? Promise.resolve(null) : testUpstream(upstream).then(describeTest)),
    [upstream.name],
  );
  const status =
    upstream.enabled === false ? "disabled" : check.loading ? "checking" : check.error ? "unknown" : check.data?.ok ? "reachable" : "unreachable";
  return (
    <li data-upstream={upstream.name}>
      <StatusPill status={status} /> <strong>{upstream.name}</strong>{" "}
      <span className="muted wrap">
        {upstream.format} · {upstream.url}
        {check.data ? ` · ${check.data.text}` : ""}
      </span>
    </li>
  );
}

function Upstreams({ state }: { state: Loaded<Upstream[]> }) {
  if (isMissingApi(state.error)) return <Empty title="Upstream health is not available on this server yet." />;
  return (
    <Async state={state} label="Loading upstreams…">
      {(list) =>
        list.length === 0 ? (
          <Empty title="No upstream sources configured." />
        ) : (
          <ul className="list" aria-label="Upstream health">
            {list.slice(0, 20).map((u) => (
              <UpstreamRow key={String(u.id ?? u.name)} upstream={u} />
            ))}
          </ul>
        )
      }
    </Async>
  );
}

export function DashboardPage() {
  const h = useLoad(health, []);
  const { me } = useAuth();
  const isAdmin = !!me?.is_admin;
  // Over every project, so for administrators only (the API refuses others).
  const stats = useLoad(() => (isAdmin ? unwrap(api.GET("/api/v1/stats/storage")) : Promise.resolve(null)), [isAdmin]);
  const upstreams = useLoad(() => (isAdmin ? listUpstreams() : Promise.resolve([] as Upstream[])), [isAdmin]);
  const projects = useLoad(() => unwrap(api.GET("/api/v1/projects", { params: { query: { limit: 1000 } } })), []);

  return (
    <section>
      <div className="page-head">
        <h1>Dashboard</h1>
        {h.data ? <StatusPill status={h.data.status} /> : null}
      </div>
      <div className="grid three kpis">
        <div className="card kpi">
          <span className="kpi-label">Storage used</span>
          <span className="kpi-value" data-testid="kpi-stored">{stats.data ? formatBytes(stats.data.stored_bytes) : "…"}</span>
          <span className="muted">{stats.data ? `${stats.data.artifacts} artifacts` : ""}</span>
        </div>
        <div className="card kpi">
          <span className="kpi-label">Saved by deduplication</span>
          <span className="kpi-value">{stats.data ? formatBytes(stats.data.saved_bytes) : "…"}</span>
          <span className="muted">{stats.data ? `${stats.data.files} files reference them` : ""}</span>
        </div>
        <div className="card kpi">
          <span className="kpi-label">Projects</span>
          <span className="kpi-value">{projects.data ? projects.data.length : "…"}</span>
          <span className="muted">{projects.data ? `${projects.data.filter((p) => !p.is_public).length} private` : ""}</span>
        </div>
      </div>
      <div className="grid two">
        <div className="card">
          <h2>Storage</h2>
          <Async state={stats} label="Loading storage statistics…">
            {(s) => !s ? <Empty title="Storage statistics are shown to administrators." /> : (
              <>
                <BarChart
                  title="Bytes"
                  format={formatBytes}
                  bars={[
                    { label: "Referenced by files", value: s.logical_bytes, color: "var(--chart-1)" },
                    { label: "Stored once", value: s.stored_bytes, color: "var(--chart-2)" },
                    { label: "Saved", value: s.saved_bytes, color: "var(--chart-3)" },
                  ]}
                />
                <p className="muted">
                  Deduplication ratio {s.stored_bytes > 0 ? `${(s.logical_bytes / s.stored_bytes).toFixed(2)}×` : "—"} ·{" "}
                  {s.unreferenced_artifacts} unreferenced artifact{s.unreferenced_artifacts === 1 ? "" : "s"} awaiting gc
                </p>
              </>
            )}
          </Async>
        </div>
        <div className="card">
          <h2>Cache</h2>
          <Async state={h} label="Loading health…">
            {(x) => {
              const hits = x.cache?.hits ?? 0;
              const misses = x.cache?.misses ?? 0;
              return (
                <DonutChart
                  title={`Cache hit rate (${x.cache?.backend ?? "cache"})`}
                  center={formatPercent(hitRate(hits, misses))}
                  format={(n) => n.toLocaleString()}
                  segments={[
                    { label: "Hits", value: hits, color: "var(--chart-2)" },
                    { label: "Misses", value: misses, color: "var(--chart-4)" },
                  ]}
                />
              );
            }}
          </Async>
        </div>
        <div className="card">
          <h2>Server health</h2>
          <ErrorBox error={h.error} retry={h.reload} />
          {h.data ? (
            <ul className="list" aria-label="Server health">
              {(["database", "storage", "cache"] as const).map((k) => {
                const part = h.data?.[k];
                return (
                  <li key={k}>
                    <StatusPill status={part?.status ?? "unknown"} /> <strong>{k}</strong>{" "}
                    <span className="muted">{part?.backend ?? ""} {"error" in (part ?? {}) ? String((part as { error?: string }).error ?? "") : ""}</span>
                  </li>
                );
              })}
            </ul>
          ) : null}
        </div>
        <div className="card">
          <h2>Upstream health</h2>
          {isAdmin ? <Upstreams state={upstreams} /> : <Empty title="Upstream health is shown to administrators." />}
        </div>
      </div>
    </section>
  );
}
