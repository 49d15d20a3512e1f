import { useEffect, useState } from "react";
import { useSearchParams } from "react-router-dom";

import { api, unwrap, type AuditEntry } from "../../api/client";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { formatDate } from "../../lib/format";

const PAGE = 100;

export function AuditPage() {
  const [params, setParams] = useSearchParams();
  const action = params.get("action") ?? "";
  const actor = params.get("actor") ?? "";
  const target = params.get("target") ?? "";
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [more, setMore] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [draft, setDraft] = useState({ action, actor, target });

  async function load(before?: number) {
    setLoading(true);
    setError(null);
    try {
      const page = await unwrap(
        api.GET("/api/v1/audit", {
          params: { query: { action: action || undefined, actor: actor || undefined, target: target || undefined, limit: PAGE, before } },
        }),
      );
      setEntries((old) => (before === undefined ? page : [...old, ...page]));
      setMore(page.length === PAGE);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  }

  useEffect(() => {
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [action, actor, target]);

  return (
    <section>
      <h1>Audit log</h1>
      <form
        className="toolbar"
        aria-label="Filter the audit log"
        onSubmit={(e) => {
          e.preventDefault();
          const p = new URLSearchParams();
          for (const [k, v] of Object.entries(draft)) if (v.trim()) p.set(k, v.trim());
          setParams(p);
        }}
      >
        <label>
          <span className="sr-only">Action</span>
          <input placeholder="action, e.g. project.create" aria-label="Action" value={draft.action} onChange={(e) => setDraft({ ...draft, action: e.target.value })} />
        </label>
        <label>
          <span className="sr-only">Actor</span>
          <input placeholder="actor" aria-label="Actor" value={draft.actor} onChange={(e) => setDraft({ ...draft, actor: e.target.value })} />
        </label>
        <label>
          <span className="sr-only">Target prefix</span>
          <input placeholder="target prefix" aria-label="Target prefix" value={draft.target} onChange={(e) => setDraft({ ...draft, target: e.target.value })} />
        </label>
        <button type="submit" className="primary">Filter</button>
      </form>
      <ErrorBox error={error} retry={() => void load()} />
      {entries.length === 0 && loading ? <Loading label="Loading the audit log…" /> : null}
      {entries.length === 0 && !loading && !error ? <Empty title="No entries match." /> : null}
      {entries.length ? (
        <div className="table-wrap">
          <table className="table" aria-label="Audit log">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">From</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.id}>
                  <td>{formatDate(e.at)}</td>
                  <td>{e.actor} <span className="muted small">{e.credential}</span></td>
                  <td><code>{e.action}</code></td>
                  <td className="wrap">{e.target}</td>
                  <td>{e.address}</td>
                  <td className="wrap small">{Object.keys(e.detail).length ? <code>{JSON.stringify(e.detail)}</code> : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {more ? (
        <button type="button" onClick={() => void load(entries[entries.length - 1]?.id)} disabled={loading}>
          {loading ? "Loading…" : "Older entries"}
        </button>
      ) : null}
    </section>
  );
}
