import { useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";

import { api, unwrap, type Project } from "../api/client";
import { Async, Empty, ErrorBox } from "../components/States";
import { isSignedIn, useAuth } from "../lib/auth";
import { useLoad } from "../lib/useLoad";

type Visibility = "all" | "public" | "private";

export function filterProjects(projects: Project[], visibility: Visibility): Project[] {
  if (visibility === "all") return projects;
  return projects.filter((p) => p.is_public === (visibility === "public"));
}

function CreateProject({ onCreated }: { onCreated: (p: Project) => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [isPublic, setIsPublic] = useState(true);
  const [upstream, setUpstream] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const p = await unwrap(
        api.POST("/api/v1/projects", { body: { name: name.trim(), description, is_public: isPublic, upstream } }),
      );
      onCreated(p);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <details className="card">
      <summary>New project</summary>
      <form onSubmit={submit} className="form" aria-label="New project">
        <label>
          Name
          <input name="name" value={name} onChange={(e) => setName(e.target.value)} required pattern="[A-Za-z0-9][A-Za-z0-9._\-]*" title="letters, digits, dot, dash and underscore" />
        </label>
        <label>
          Description
          <input name="description" value={description} onChange={(e) => setDescription(e.target.value)} />
        </label>
        <label className="check">
          <input type="checkbox" name="is_public" checked={isPublic} onChange={(e) => setIsPublic(e.target.checked)} />
          Public (anyone may read it)
        </label>
        <label className="check">
          <input type="checkbox" name="upstream" checked={upstream} onChange={(e) => setUpstream(e.target.checked)} />
          Fall through to upstream registries
        </label>
        <ErrorBox error={error} />
        <button type="submit" className="primary" disabled={busy}>
          Create project
        </button>
      </form>
    </details>
  );
}

export function ProjectsPage() {
  const { me } = useAuth();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const q = params.get("q") ?? "";
  const visibility = (params.get("visibility") as Visibility) || "all";
  const state = useLoad(
    () => unwrap(api.GET("/api/v1/projects", { params: { query: { q: q || undefined, limit: 1000 } } })),
    [q, me?.username],
  );

  function update(key: string, value: string) {
    const next = new URLSearchParams(params);
    if (value && value !== "all") next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  }

  return (
    <section>
      <div className="page-head">
        <h1>Projects</h1>
      </div>
      <div className="toolbar" role="search">
        <label>
          <span className="sr-only">Search projects</span>
          <input type="search" placeholder="Search projects by name" value={q} onChange={(e) => update("q", e.target.value)} aria-label="Search projects" />
        </label>
        <label>
          <span className="sr-only">Visibility</span>
          <select value={visibility} onChange={(e) => update("visibility", e.target.value)} aria-label="Visibility">
            <option value="all">All projects</option>
            <option value="public">Public</option>
            <option value="private">Private</option>
          </select>
        </label>
      </div>
      {isSignedIn(me) ? <CreateProject onCreated={(p) => navigate(`/projects/${encodeURIComponent(p.name)}`)} /> : null}
      <Async state={state} label="Loading projects…">
        {(projects) => {
          const shown = filterProjects(projects, visibility);
          if (shown.length === 0)
            return <Empty title={q || visibility !== "all" ? "No project matches." : "No projects yet."}>{isSignedIn(me) ? "Create one above." : "Sign in to see private projects."}</Empty>;
          return (
            <ul className="cards" aria-label="Projects">
              {shown.map((p) => (
                <li key={p.name} className="card project-card">
                  <Link to={`/projects/${encodeURIComponent(p.name)}`} className="card-title">
                    {p.name}
                  </Link>
                  <div className="tags">
                    <span className={`pill ${p.is_public ? "good" : "warn"}`}>{p.is_public ? "public" : "private"}</span>
                    {p.upstream ? <span className="pill neutral">upstream</span> : null}
                    {p.builtin ? <span className="pill neutral">built-in</span> : null}
                  </div>
                  <p className="muted">{p.description || "No description."}</p>
                </li>
              ))}
            </ul>
          );
        }}
      </Async>
    </section>
  );
}
