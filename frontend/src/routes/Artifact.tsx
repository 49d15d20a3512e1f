import { Link, useParams } from "react-router-dom";

import { api, unwrap } from "../api/client";
import { CopyButton } from "../components/CopyButton";
import { Async, Empty } from "../components/States";
import { formatBytes, formatDate } from "../lib/format";
import { useLoad } from "../lib/useLoad";

export function ArtifactPage() {
  const { sha256 = "" } = useParams();
  const state = useLoad(() => unwrap(api.GET("/api/v1/artifacts/{sha256}", { params: { path: { sha256 } } })), [sha256]);
  return (
    <section>
      <h1>Artifact</h1>
      <Async state={state} label="Loading artifact…">
        {(a) => (
          <>
            <div className="card">
              <dl className="facts">
                <dt>SHA-256</dt>
                <dd className="hash"><code className="wrap">{a.sha256}</code> <CopyButton text={a.sha256} label="Copy SHA-256" /></dd>
                <dt>Size</dt>
                <dd>{formatBytes(a.size)} ({a.size.toLocaleString()} bytes)</dd>
                <dt>Content type</dt>
                <dd>{a.content_type}</dd>
                <dt>References</dt>
                <dd>{a.ref_count ?? a.references.length}</dd>
                <dt>Stored</dt>
                <dd>{formatDate(a.created_at)}</dd>
                <dt>MD5</dt>
                <dd><code className="wrap">{a.md5}</code></dd>
                <dt>SHA-1</dt>
                <dd><code className="wrap">{a.sha1}</code></dd>
                <dt>SHA-512</dt>
                <dd><code className="wrap">{a.sha512}</code></dd>
              </dl>
              <a className="button" href={`/api/v1/artifacts/${a.sha256}/content`}>Download</a>
            </div>
            <div className="card">
              <h2>Who references it</h2>
              {a.references.length === 0 ? (
                <Empty title="No file you may see references this artifact." />
              ) : (
                <table className="table" aria-label="References">
                  <thead>
                    <tr>
                      <th scope="col">Project</th>
                      <th scope="col">Package</th>
                      <th scope="col">Version</th>
                      <th scope="col">File</th>
                    </tr>
                  </thead>
                  <tbody>
                    {a.references.map((r) => {
                      const proj = `/projects/${encodeURIComponent(r.project)}`;
                      const pkg = `${proj}/packages/${encodeURIComponent(r.package)}`;
                      return (
                        <tr key={`${r.project}/${r.package}/${r.version}/${r.filename}`}>
                          <td><Link to={proj}>{r.project}</Link></td>
                          <td><Link to={pkg}>{r.package}</Link></td>
                          <td><Link to={`${pkg}/versions/${encodeURIComponent(r.version)}`}>{r.version}</Link></td>
                          <td>{r.filename}</td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              )}
            </div>
          </>
        )}
      </Async>
    </section>
  );
}
