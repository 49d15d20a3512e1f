import { useState, type FormEvent } from "react";

import {
  createUpstream,
  deleteUpstream,
  describeHosts,
  describeTest,
  isMissingApi,
  listUpstreams,
  parseHosts,
  testUpstream,
  updateUpstream,
  type Upstream,
  type UpstreamIn,
} from "../../api/upstreams";
import { errorMessage } from "../../api/errors";
import { StatusPill } from "../../components/Charts";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { useLoad } from "../../lib/useLoad";

const EMPTY: UpstreamIn = { name: "", format: "pypi", url: "", priority: 10, enabled: true, auth_type: "none" };

/** The allowed file hosts of one source: shown, and editable for database sources. */
export function FileHosts({ upstream, onSaved }: { upstream: Upstream; onSaved: () => void }) {
  const [editing, setEditing] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const hosts = upstream.file_hosts;

  async function save(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      await updateUpstream(upstream, { file_hosts: parseHosts(editing ?? "") });
      setEditing(null);
      onSaved();
    } catch (err) {
      setError(err);
    }
  }

  if (editing !== null) {
    return (
      <form className="row" onSubmit={save} aria-label={`File hosts of ${upstream.name}`}>
        <input
          name="file_hosts"
          value={editing}
          onChange={(e) => setEditing(e.target.value)}
          placeholder="files.example, cdn.example:8443"
          aria-label={`Allowed file hosts of ${upstream.name}`}
        />
        <button type="submit" className="small">Save</button>
        <button type="button" className="small" onClick={() => setEditing(null)}>Cancel</button>
        <ErrorBox error={error} />
      </form>
    );
  }
  return (
    <span data-testid="file-hosts">
      <span className={hosts && hosts.length ? "" : "muted"}>{describeHosts(hosts)}</span>
      {upstream.source !== "settings" ? (
        <>
          {" "}
          <button type="button" className="small" onClick={() => setEditing((hosts ?? []).join(", "))} aria-label={`Edit file hosts of ${upstream.name}`}>
            Edit
          </button>
        </>
      ) : null}
    </span>
  );
}

export function UpstreamsPage() {
  const state = useLoad(listUpstreams, []);
  const [form, setForm] = useState<UpstreamIn>(EMPTY);
  const [secret, setSecret] = useState("");
  const [hostsText, setHostsText] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [tests, setTests] = useState<Record<string, { ok: boolean; text: string } | "running">>({});
  const missing = isMissingApi(state.error);

  async function create(e: FormEvent) {
    e.preventDefault();
    setError(null);
    const body: UpstreamIn = { ...form, name: form.name.trim(), url: form.url.trim(), file_hosts: parseHosts(hostsText) };
    if (form.auth_type === "basic") body.password = secret;
    if (form.auth_type === "bearer") body.token = secret;
    if (form.auth_type === "none") delete body.username;
    try {
      await createUpstream(body);
      setForm(EMPTY);
      setSecret("");
      setHostsText("");
      state.reload();
    } catch (err) {
      setError(err);
    }
  }

  async function remove(u: Upstream) {
    if (!window.confirm(`Delete upstream source ${u.name}?`)) return;
    setError(null);
    try {
      await deleteUpstream(u);
      state.reload();
    } catch (err) {
      setError(err);
    }
  }

  async function test(u: Upstream) {
    setTests((t) => ({ ...t, [u.name]: "running" }));
    try {
      const result = describeTest(await testUpstream(u));
      setTests((t) => ({ ...t, [u.name]: result }));
    } catch (err) {
      setTests((t) => ({ ...t, [u.name]: { ok: false, text: errorMessage(err) } }));
    }
  }

  const set = <K extends keyof UpstreamIn>(key: K, value: UpstreamIn[K]) => setForm((f) => ({ ...f, [key]: value }));

  return (
    <section>
      <h1>Upstream sources</h1>
      <p className="muted">
        Registries that projects with upstream enabled fall through to, asked in priority order (lower first). Credentials are
        stored encrypted and never shown again.
      </p>
      {missing ? (
        <div className="state empty" role="status" data-testid="upstreams-unavailable">
          <p className="empty-title">Upstream sources cannot be managed on this server yet.</p>
          <p className="muted">
            This Orchard does not offer the upstream-sources API (/api/v1/upstreams). Upstreams from the server's settings
            (ORCHARD_UPSTREAM_PYPI_URL, …_NPM_URL, …_GO_URL) still apply.
          </p>
        </div>
      ) : state.error ? (
        <ErrorBox error={state.error} retry={state.reload} />
      ) : state.loading && !state.data ? (
        <Loading label="Loading upstream sources…" />
      ) : (state.data ?? []).length === 0 ? (
        <Empty title="No upstream sources configured." />
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label="Upstream sources">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Format</th>
                <th scope="col">URL</th>
                <th scope="col">File hosts</th>
                <th scope="col">Priority</th>
                <th scope="col">State</th>
                <th scope="col">Connection</th>
                <th scope="col"><span className="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {(state.data ?? []).map((u) => {
                const t = tests[u.name];
                return (
                  <tr key={String(u.id ?? u.name)} data-upstream={u.name}>
                    <td>{u.name}{u.source === "settings" ? <span className="pill neutral">settings</span> : null}</td>
                    <td>{u.format ?? "—"}{u.auth_type && u.auth_type !== "none" ? <span className="pill neutral">{u.auth_type}{u.has_credentials ? " ✓" : ""}</span> : null}</td>
                    <td className="wrap"><code>{u.url}</code></td>
                    <td className="wrap"><FileHosts upstream={u} onSaved={state.reload} /></td>
                    <td>{u.priority ?? "—"}</td>
                    <td><StatusPill status={u.enabled === false ? "disabled" : "enabled"} /></td>
                    <td aria-live="polite">
                      {t === "running" ? "Testing…" : t ? <span className={t.ok ? "success" : "error-text"}>{t.text}</span> : <span className="muted">not tested</span>}
                    </td>
                    <td className="row">
                      <button type="button" className="small" onClick={() => void test(u)} aria-label={`Test connection to ${u.name}`}>Test connection</button>
                      {u.source !== "settings" ? (
                        <button type="button" className="danger small" onClick={() => void remove(u)} aria-label={`Delete ${u.name}`}>Delete</button>
                      ) : null}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {!missing ? (
        <form className="card form" onSubmit={create} aria-label="New upstream source">
          <h2>Add an upstream source</h2>
          <div className="grid three">
            <label>
              Name
              <input name="upstream_name" value={form.name} onChange={(e) => set("name", e.target.value)} required />
            </label>
            <label>
              Format
              <select name="format" value={form.format} onChange={(e) => set("format", e.target.value)}>
                <option value="pypi">Python (simple index)</option>
                <option value="npm">npm registry</option>
                <option value="go">Go module proxy</option>
              </select>
            </label>
            <label>
              Priority
              <input name="priority" type="number" min={0} value={form.priority} onChange={(e) => set("priority", Number(e.target.value))} />
            </label>
          </div>
          <label>
            URL
            <input name="url" type="url" value={form.url} onChange={(e) => set("url", e.target.value)} required placeholder="https://registry.internal.example/simple/" />
          </label>
          <label>
            Allowed file hosts
            <input name="file_hosts" value={hostsText} onChange={(e) => setHostsText(e.target.value)} placeholder="files.example, cdn.example:8443" aria-describedby="file-hosts-help" />
          </label>
          <p className="muted" id="file-hosts-help">
            Hosts (host or host:port) besides the source's own that its pages may link files to. Empty: any https host
            with public addresses only.
          </p>
          <div className="grid three">
            <label>
              Authentication
              <select name="auth_type" value={form.auth_type} onChange={(e) => set("auth_type", e.target.value as UpstreamIn["auth_type"])}>
                <option value="none">none</option>
                <option value="basic">basic (user + password)</option>
                <option value="bearer">bearer token</option>
              </select>
            </label>
            {form.auth_type === "basic" ? (
              <label>
                User name
                <input name="auth_username" value={form.username ?? ""} onChange={(e) => set("username", e.target.value)} autoComplete="off" />
              </label>
            ) : null}
            {form.auth_type !== "none" ? (
              <label>
                {form.auth_type === "basic" ? "Password" : "Token"}
                <input name="auth_secret" type="password" value={secret} onChange={(e) => setSecret(e.target.value)} autoComplete="new-password" />
              </label>
            ) : null}
          </div>
          <label className="check">
            <input type="checkbox" name="enabled" checked={form.enabled} onChange={(e) => set("enabled", e.target.checked)} />
            Enabled
          </label>
          <ErrorBox error={error} />
          <button type="submit" className="primary">Add upstream</button>
        </form>
      ) : null}
    </section>
  );
}
