import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { api, unwrap, type Version } from "../api/client";
import { CodeLine } from "../components/CopyButton";
import { Async, Empty, ErrorBox, Loading } from "../components/States";
import { formatDate } from "../lib/format";
import { installInstructions } from "../lib/install";
import { uiPath } from "../lib/links";
import { isSignedIn, useAuth } from "../lib/auth";
import { useLoad } from "../lib/useLoad";

/** Newest first by publication time (ties: the API's own order). */
export function newestFirst(versions: Version[]): Version[] {
  return versions
    .map((v, i) => ({ v, i }))
    .sort((a, b) => Date.parse(b.v.created_at) - Date.parse(a.v.created_at) || a.i - b.i)
    .map(({ v }) => v);
}

function Install({ project, pkg, format, version, isPublic }: { project: string; pkg: string; format: string; version: string; isPublic: boolean }) {
  const detail = useLoad(
    () => unwrap(api.GET("/api/v1/project/{project}/packages/{package}/versions/{version}", { params: { path: { project, package: pkg, version } } })),
    [project, pkg, version],
  );
  const filename = detail.data?.files?.[0]?.filename ?? null;
  const steps = installInstructions({ baseUrl: window.location.origin, project, pkg, format, version, filename, isPublic });
  return (
    <div className="card" aria-label="Install">
      <h2>Install {version}</h2>
      {detail.loading ? <Loading label="Loading files…" /> : null}
      {detail.loading ? null : steps.map((s) => (
        <div key={s.id} className="install" data-install={s.id}>
          <h3>{s.label}</h3>
          <CodeLine text={s.command} label={`Copy ${s.label} command`} />
          {s.note ? <p className="muted small">{s.note}</p> : null}
        </div>
      ))}
    </div>
  );
}

export function PackagePage() {
  const { project = "", pkg = "" } = useParams();
  const { me } = useAuth();
  const navigate = useNavigate();
  const path = { project, package: pkg };
  const projectState = useLoad(() => unwrap(api.GET("/api/v1/project/{project}", { params: { path: { project } } })), [project]);
  const pkgState = useLoad(() => unwrap(api.GET("/api/v1/project/{project}/packages/{package}", { params: { path } })), [project, pkg]);
  const versions = useLoad(
    () => unwrap(api.GET("/api/v1/project/{project}/packages/{package}/versions", { params: { path } })).then(newestFirst),
    [project, pkg],
  );
  const [chosen, setChosen] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function remove() {
    if (!window.confirm(`Delete package ${pkg} and all its versions?`)) return;
    try {
      await unwrap(api.DELETE("/api/v1/project/{project}/packages/{package}", { params: { path } }));
      navigate(`/projects/${encodeURIComponent(project)}`);
    } catch (err) {
      setError(err);
    }
  }

  return (
    <Async state={pkgState} label="Loading package…">
      {(p) => (
        <section>
          <nav aria-label="Breadcrumb" className="crumbs">
            <Link to="/projects">Projects</Link> / <Link to={`/projects/${encodeURIComponent(project)}`}>{project}</Link> /{" "}
            <span aria-current="page">{p.display_name}</span>
          </nav>
          <div className="page-head">
            <h1>{p.display_name}</h1>
            <span className="pill neutral">{p.format}</span>
          </div>
          {p.description ? <p>{p.description}</p> : null}
          <ErrorBox error={error} />
          <Async state={versions} label="Loading versions…">
            {(vs) => {
              if (vs.length === 0) return <Empty title="No versions yet." />;
              const latest = vs.find((v) => !v.yanked) ?? vs[0];
              const selected = vs.find((v) => v.version === chosen) ?? latest;
              return (
                <div className="grid two">
                  <div className="card">
                    <h2>Versions</h2>
                    <table className="table" aria-label="Versions">
                      <thead>
                        <tr>
                          <th scope="col">Version</th>
                          <th scope="col">Published</th>
                          <th scope="col">State</th>
                          <th scope="col"><span className="sr-only">Install</span></th>
                        </tr>
                      </thead>
                      <tbody>
                        {vs.map((v) => (
                          <tr key={v.version} aria-selected={v.version === selected.version}>
                            <td>
                              <Link to={uiPath(v.url)}>{v.version}</Link>
                              {v === latest ? <span className="pill good">latest</span> : null}
                            </td>
                            <td>{formatDate(v.created_at)}</td>
                            <td>
                              {v.yanked ? <span className="pill bad" title={v.yank_reason}>yanked</span> : null}
                              {v.deprecated ? <span className="pill warn" title={v.deprecated}>deprecated</span> : null}
                            </td>
                            <td>
                              <button type="button" className="small" onClick={() => setChosen(v.version)} aria-pressed={v.version === selected.version}>
                                Install
                              </button>
                            </td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                  <Install project={project} pkg={p.name} format={p.format} version={selected.version} isPublic={projectState.data?.is_public ?? true} />
                </div>
              );
            }}
          </Async>
          {isSignedIn(me) ? (
            <p>
              <button type="button" className="danger small" onClick={() => void remove()}>Delete package</button>
            </p>
          ) : null}
        </section>
      )}
    </Async>
  );
}
