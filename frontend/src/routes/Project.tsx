import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { api, unwrap, type Member, type Project } from "../api/client";
import { Async, Empty, ErrorBox } from "../components/States";
import { formatDate } from "../lib/format";
import { uiPath } from "../lib/links";
import { isSignedIn, useAuth } from "../lib/auth";
import { useLoad } from "../lib/useLoad";

const ROLES = ["read", "write", "admin"] as const;

function Settings({ project, onSaved }: { project: Project; onSaved: (p: Project) => void }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  async function patch(body: { is_public?: boolean; upstream?: boolean }) {
    setBusy(true);
    setError(null);
    try {
      onSaved(await unwrap(api.PATCH("/api/v1/project/{project}", { params: { path: { project: project.name } }, body })));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return (
    <div className="card">
      <h2>Settings</h2>
      <div className="form">
        <label className="check">
          <input type="checkbox" name="is_public" checked={project.is_public} disabled={busy || project.builtin} onChange={(e) => void patch({ is_public: e.target.checked })} />
          Public: anyone, signed in or not, may read this project
        </label>
        <label className="check">
          <input type="checkbox" name="upstream" checked={project.upstream} disabled={busy || project.builtin} onChange={(e) => void patch({ upstream: e.target.checked })} />
          Upstream: names not hosted here fall through to the upstream registries
        </label>
        <ErrorBox error={error} />
      </div>
    </div>
  );
}

function Members({ project, canAdmin }: { project: string; canAdmin: boolean }) {
  const state = useLoad(() => unwrap(api.GET("/api/v1/project/{project}/members", { params: { path: { project } } })), [project]);
  const [username, setUsername] = useState("");
  const [role, setRole] = useState<string>("read");
  const [error, setError] = useState<unknown>(null);

  async function setMember(name: string, r: string) {
    setError(null);
    try {
      await unwrap(api.PUT("/api/v1/project/{project}/members/{username}", { params: { path: { project, username: name } }, body: { role: r } }));
      state.reload();
      return true;
    } catch (err) {
      setError(err);
      return false;
    }
  }
  async function remove(m: Member) {
    if (!window.confirm(`Remove ${m.username} from ${project}?`)) return;
    setError(null);
    try {
      await unwrap(api.DELETE("/api/v1/project/{project}/members/{username}", { params: { path: { project, username: m.username } } }));
      state.reload();
    } catch (err) {
      setError(err);
    }
  }
  async function add(e: FormEvent) {
    e.preventDefault();
    if (await setMember(username.trim(), role)) setUsername("");
  }

  return (
    <div className="card">
      <h2>Members</h2>
      <ErrorBox error={error} />
      <Async state={state} label="Loading members…">
        {(members) =>
          members.length === 0 ? (
            <Empty title="No members.">Public projects are readable by everyone; add members to let them write.</Empty>
          ) : (
            <table className="table" aria-label="Members">
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col">Role</th>
                  <th scope="col">Since</th>
                  {canAdmin ? <th scope="col"><span className="sr-only">Actions</span></th> : null}
                </tr>
              </thead>
              <tbody>
                {members.map((m) => (
                  <tr key={m.username} data-member={m.username}>
                    <td>{m.username}</td>
                    <td>
                      {canAdmin ? (
                        <select aria-label={`Role of ${m.username}`} value={m.role} onChange={(e) => void setMember(m.username, e.target.value)}>
                          {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
                        </select>
                      ) : (
                        m.role
                      )}
                    </td>
                    <td>{formatDate(m.created_at)}</td>
                    {canAdmin ? (
                      <td>
                        <button type="button" className="danger small" onClick={() => void remove(m)} aria-label={`Remove ${m.username}`}>
                          Remove
                        </button>
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Async>
      {canAdmin ? (
        <form onSubmit={add} className="form inline" aria-label="Add member">
          <label>
            User name
            <input name="member" value={username} onChange={(e) => setUsername(e.target.value)} required />
          </label>
          <label>
            Role
            <select name="role" value={role} onChange={(e) => setRole(e.target.value)}>
              {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
            </select>
          </label>
          <button type="submit" className="primary">Add member</button>
        </form>
      ) : null}
    </div>
  );
}

export function ProjectPage() {
  const { project = "" } = useParams();
  const { me } = useAuth();
  const navigate = useNavigate();
  const projectState = useLoad(() => unwrap(api.GET("/api/v1/project/{project}", { params: { path: { project } } })), [project, me?.username]);
  const packages = useLoad(() => unwrap(api.GET("/api/v1/project/{project}/packages", { params: { path: { project }, query: { limit: 1000 } } })), [project, me?.username]);
  const members = useLoad(
    () => (isSignedIn(me) ? unwrap(api.GET("/api/v1/project/{project}/members", { params: { path: { project } } })) : Promise.resolve([] as Member[])),
    [project, me?.username],
  );
  const [override, setOverride] = useState<Project | null>(null);
  const [error, setError] = useState<unknown>(null);
  const myRole = members.data?.find((m) => m.username === me?.username)?.role;
  const canAdmin = isSignedIn(me) && (me.is_admin || myRole === "admin");
  const canWrite = canAdmin || myRole === "write";

  async function deleteProject() {
    if (!window.confirm(`Delete project ${project} with all its packages, versions and files?`)) return;
    try {
      await unwrap(api.DELETE("/api/v1/project/{project}", { params: { path: { project } } }));
      navigate("/projects");
    } catch (err) {
      setError(err);
    }
  }

  return (
    <Async state={projectState} label="Loading project…">
      {(loaded) => {
        const p = override && override.name === loaded.name ? override : loaded;
        return (
          <section>
            <nav aria-label="Breadcrumb" className="crumbs">
              <Link to="/projects">Projects</Link> / <span aria-current="page">{p.name}</span>
            </nav>
            <div className="page-head">
              <h1>{p.name}</h1>
              <div className="tags">
                <span className={`pill ${p.is_public ? "good" : "warn"}`}>{p.is_public ? "public" : "private"}</span>
                <span className="pill neutral">{p.upstream ? "upstream on" : "upstream off"}</span>
              </div>
              {canWrite && !p.builtin ? (
                <Link className="button primary" to={`/upload?project=${encodeURIComponent(p.name)}`}>Upload files</Link>
              ) : null}
            </div>
            {p.description ? <p>{p.description}</p> : null}
            <ErrorBox error={error} />
            <div className="grid two">
              <div className="card">
                <h2>Packages</h2>
                <Async state={packages} label="Loading packages…">
                  {(pkgs) =>
                    pkgs.length === 0 ? (
                      <Empty title="No packages yet.">{canWrite ? "Upload a file to create one." : null}</Empty>
                    ) : (
                      <ul className="list" aria-label="Packages">
                        {pkgs.map((k) => (
                          <li key={k.url} data-package={`${k.format}:${k.name}`}>
                            <Link to={uiPath(k.url)}>{k.display_name}</Link>
                            <span className="pill neutral">{k.format}</span>
                            {k.description ? <span className="muted"> {k.description}</span> : null}
                          </li>
                        ))}
                      </ul>
                    )
                  }
                </Async>
              </div>
              <div>
                {canAdmin ? <Settings project={p} onSaved={setOverride} /> : null}
                {isSignedIn(me) ? <Members project={p.name} canAdmin={canAdmin && !p.builtin} /> : null}
                {canAdmin && !p.builtin ? (
                  <div className="card danger-zone">
                    <h2>Delete</h2>
                    <button type="button" className="danger" onClick={() => void deleteProject()}>Delete this project</button>
                  </div>
                ) : null}
              </div>
            </div>
          </section>
        );
      }}
    </Async>
  );
}
