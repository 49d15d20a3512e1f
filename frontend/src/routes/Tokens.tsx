import { useState, type FormEvent } from "react";

import { api, unwrap, type Token, type TokenCreated } from "../api/client";
import { CodeLine } from "../components/CopyButton";
import { Async, Empty, ErrorBox } from "../components/States";
import { formatDate } from "../lib/format";
import { useLoad } from "../lib/useLoad";

function tokenState(t: Token): string {
  if (t.revoked_at) return "revoked";
  if (t.expires_at && Date.parse(t.expires_at) < Date.now()) return "expired";
  return "active";
}

export function TokensPage() {
  const state = useLoad(() => unwrap(api.GET("/api/v1/tokens")), []);
  const [name, setName] = useState("");
  const [scope, setScope] = useState("read");
  const [expires, setExpires] = useState("");
  const [created, setCreated] = useState<TokenCreated | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function create(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const token = await unwrap(
        api.POST("/api/v1/tokens", {
          body: { name: name.trim(), scope, expires_at: expires ? new Date(`${expires}T23:59:59`).toISOString() : null },
        }),
      );
      setCreated(token);
      setName("");
      state.reload();
    } catch (err) {
      setError(err);
    }
  }

  async function revoke(t: Token) {
    if (!window.confirm(`Revoke token “${t.name}”? Clients using it stop working at once.`)) return;
    setError(null);
    try {
      await unwrap(api.DELETE("/api/v1/tokens/{token_id}", { params: { path: { token_id: t.id } } }));
      if (created?.id === t.id) setCreated(null);
      state.reload();
    } catch (err) {
      setError(err);
    }
  }

  return (
    <section>
      <h1>API tokens</h1>
      <p className="muted">Tokens let pip, npm, go, curl and the CLI act as you. A token is shown once, when it is created.</p>
      <form className="card form inline" onSubmit={create} aria-label="New token">
        <label>
          Name
          <input name="token_name" value={name} onChange={(e) => setName(e.target.value)} required placeholder="e.g. laptop CI" />
        </label>
        <label>
          Scope
          <select name="scope" value={scope} onChange={(e) => setScope(e.target.value)}>
            <option value="read">read</option>
            <option value="write">write</option>
          </select>
        </label>
        <label>
          Expires (optional)
          <input type="date" name="expires" value={expires} onChange={(e) => setExpires(e.target.value)} />
        </label>
        <button type="submit" className="primary">Create token</button>
      </form>
      {created ? (
        <div className="card highlight" role="status" data-testid="new-token">
          <h2>Your new token “{created.name}”</h2>
          <p>Copy it now: it will not be shown again.</p>
          <CodeLine text={created.token} label="Copy token" />
          <button type="button" className="link-button" onClick={() => setCreated(null)}>I have copied it</button>
        </div>
      ) : null}
      <ErrorBox error={error} />
      <Async state={state} label="Loading tokens…">
        {(tokens) =>
          tokens.length === 0 ? (
            <Empty title="No tokens yet." />
          ) : (
            <div className="table-wrap">
              <table className="table" aria-label="Tokens">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Prefix</th>
                    <th scope="col">Scope</th>
                    <th scope="col">State</th>
                    <th scope="col" className="hide-phone">Created</th>
                    <th scope="col" className="hide-phone">Last used</th>
                    <th scope="col">Expires</th>
                    <th scope="col"><span className="sr-only">Actions</span></th>
                  </tr>
                </thead>
                <tbody>
                  {tokens.map((t) => {
                    const st = tokenState(t);
                    return (
                      <tr key={t.id} data-token={t.name} data-state={st}>
                        <td>{t.name}</td>
                        <td><code>{t.prefix}…</code></td>
                        <td>{t.scope}</td>
                        <td><span className={`pill ${st === "active" ? "good" : "bad"}`}>{st}</span></td>
                        <td className="hide-phone">{formatDate(t.created_at)}</td>
                        <td className="hide-phone">{formatDate(t.last_used_at)}</td>
                        <td>{t.expires_at ? formatDate(t.expires_at) : "never"}</td>
                        <td>
                          {st !== "revoked" ? (
                            <button type="button" className="danger small" onClick={() => void revoke(t)} aria-label={`Revoke ${t.name}`}>
                              Revoke
                            </button>
                          ) : null}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )
        }
      </Async>
    </section>
  );
}
