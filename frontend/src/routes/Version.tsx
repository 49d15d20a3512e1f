import { useState } from "react";
import { Link, useParams } from "react-router-dom";

import { api, unwrap, type ArtifactDetail, type Version } from "../api/client";
import { CopyButton } from "../components/CopyButton";
import { Async, Empty, ErrorBox } from "../components/States";
import { formatBytes, formatDate, shortHash } from "../lib/format";
import { refName, refSegment } from "../lib/links";
import { isSignedIn, useAuth } from "../lib/auth";
import { useLoad } from "../lib/useLoad";

function Dependencies({ artifacts }: { artifacts: ArtifactDetail[] }) {
  const deps = artifacts.flatMap((a) => a.dependencies);
  if (deps.length === 0) return <Empty title="No dependencies recorded." >Dependencies are read from package metadata (wheels, npm tarballs, go.mod).</Empty>;
  return (
    <table className="table" aria-label="Dependencies">
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Specifier</th>
          <th scope="col">Kind</th>
        </tr>
      </thead>
      <tbody>
        {deps.map((d, i) => (
          <tr key={`${d.name}-${i}`}>
            <td>{d.name}</td>
            <td><code>{d.specifier || "any"}</code></td>
            <td>{d.kind}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function VersionPage() {
  const { project = "", pkg = "", version = "" } = useParams();
  const { me } = useAuth();
  const path = { project, package: pkg, version };
  const state = useLoad(() => unwrap(api.GET("/api/v1/project/{project}/packages/{package}/versions/{version}", { params: { path } })), [project, pkg, version]);
  const [override, setOverride] = useState<Version | null>(null);
  const files = (override ?? state.data)?.files ?? [];
  const artifacts = useLoad(
    () =>
      Promise.all(
        files.map((f) => unwrap(api.GET("/api/v1/artifacts/{sha256}", { params: { path: { sha256: f.sha256 } } }))),
      ),
    [files.map((f) => f.sha256).join(",")],
  );
  const [error, setError] = useState<unknown>(null);

  async function patch(body: { yanked?: boolean; yank_reason?: string; deprecated?: string }) {
    setError(null);
    try {
      setOverride(await unwrap(api.PATCH("/api/v1/project/{project}/packages/{package}/versions/{version}", { params: { path }, body })));
    } catch (err) {
      setError(err);
    }
  }

  return (
    <Async state={state} label="Loading version…">
      {(loaded) => {
        const v = override ?? loaded;
        const pkgUrl = `/projects/${encodeURIComponent(project)}/packages/${refSegment(pkg)}`;
        const name = refName(pkg);
        return (
          <section>
            <nav aria-label="Breadcrumb" className="crumbs">
              <Link to="/projects">Projects</Link> / <Link to={`/projects/${encodeURIComponent(project)}`}>{project}</Link> /{" "}
              <Link to={pkgUrl}>{name}</Link> / <span aria-current="page">{v.version}</span>
            </nav>
            <div className="page-head">
              <h1>
                {name} <span className="muted">{v.version}</span>
              </h1>
              <span className="muted">published {formatDate(v.created_at)}</span>
            </div>
            {v.yanked ? (
              <p className="banner bad" role="note">
                <strong>Yanked.</strong> {v.yank_reason || "Installers skip this version unless it is pinned exactly."}
              </p>
            ) : null}
            {v.deprecated ? (
              <p className="banner warn" role="note">
                <strong>Deprecated:</strong> {v.deprecated}
              </p>
            ) : null}
            <ErrorBox error={error} />
            <div className="card">
              <h2>Files</h2>
              {files.length === 0 ? (
                <Empty title="This version has no files." />
              ) : (
                <div className="table-wrap">
                  <table className="table" aria-label="Files">
                    <thead>
                      <tr>
                        <th scope="col">File</th>
                        <th scope="col">Size</th>
                        <th scope="col">SHA-256</th>
                        <th scope="col" className="hide-phone">Uploaded</th>
                      </tr>
                    </thead>
                    <tbody>
                      {files.map((f) => (
                        <tr key={f.filename}>
                          <td>
                            <a href={f.url} download={f.filename}>{f.filename}</a>
                          </td>
                          <td className="nowrap">{formatBytes(f.size)}</td>
                          <td className="hash">
                            <Link to={`/artifacts/${f.sha256}`} title={f.sha256}>
                              <code>{shortHash(f.sha256)}</code>
                            </Link>
                            <CopyButton text={f.sha256} label="Copy SHA-256" />
                          </td>
                          <td className="hide-phone">{formatDate(f.created_at)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
            </div>
            <div className="card">
              <h2>Dependencies</h2>
              <Async state={artifacts} label="Loading dependencies…">
                {(list) => <Dependencies artifacts={list} />}
              </Async>
            </div>
            {isSignedIn(me) ? (
              <div className="card">
                <h2>State</h2>
                <div className="row">
                  {v.yanked ? (
                    <button type="button" onClick={() => void patch({ yanked: false, yank_reason: "" })}>Un-yank</button>
                  ) : (
                    <button
                      type="button"
                      onClick={() => {
                        const reason = window.prompt("Why is this version yanked? (optional)") ?? undefined;
                        if (reason !== undefined) void patch({ yanked: true, yank_reason: reason });
                      }}
                    >
                      Yank
                    </button>
                  )}
                  {v.deprecated ? (
                    <button type="button" onClick={() => void patch({ deprecated: "" })}>Remove deprecation</button>
                  ) : (
                    <button
                      type="button"
                      onClick={() => {
                        const msg = window.prompt("Deprecation message");
                        if (msg) void patch({ deprecated: msg });
                      }}
                    >
                      Deprecate
                    </button>
                  )}
                </div>
              </div>
            ) : null}
          </section>
        );
      }}
    </Async>
  );
}
