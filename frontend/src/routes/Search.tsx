import { useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { api, unwrap, type SearchHit } from "../api/client";
import { Async, Empty } from "../components/States";
import { uiPath } from "../lib/links";
import { useLoad } from "../lib/useLoad";

const FORMATS = ["", "generic", "pypi", "npm", "go"];

export function SearchPage() {
  const [params, setParams] = useSearchParams();
  const q = params.get("q") ?? "";
  const format = params.get("format") ?? "";
  const [text, setText] = useState(q);
  useEffect(() => setText(q), [q]);
  const state = useLoad<SearchHit[] | null>(
    () => (q.trim() ? unwrap(api.GET("/api/v1/search", { params: { query: { q: q.trim(), format: format || undefined } } })) : Promise.resolve(null)),
    [q, format],
  );

  function submit(next: { q?: string; format?: string }) {
    const p = new URLSearchParams(params);
    for (const [k, v] of Object.entries(next)) {
      if (v) p.set(k, v);
      else p.delete(k);
    }
    setParams(p);
  }

  return (
    <section>
      <h1>Search packages</h1>
      <form
        className="toolbar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          submit({ q: text });
        }}
      >
        <label className="grow">
          <span className="sr-only">Package name</span>
          <input type="search" name="q" placeholder="Part of a package name" value={text} onChange={(e) => setText(e.target.value)} aria-label="Package name" autoFocus />
        </label>
        <label>
          <span className="sr-only">Format</span>
          <select aria-label="Format" value={format} onChange={(e) => submit({ format: e.target.value })}>
            {FORMATS.map((f) => (
              <option key={f} value={f}>{f || "Any format"}</option>
            ))}
          </select>
        </label>
        <button type="submit" className="primary">Search</button>
      </form>
      <Async state={state} label="Searching…">
        {(hits) =>
          hits === null ? (
            <Empty title="Type part of a package name.">Searches every project you may read.</Empty>
          ) : hits.length === 0 ? (
            <Empty title={`Nothing matches “${q}”.`} />
          ) : (
            <ul className="cards" aria-label="Search results">
              {hits.map((h) => (
                <li key={`${h.project}/${h.package}`} className="card">
                  <Link className="card-title" to={uiPath(h.url)}>
                    {h.package}
                  </Link>
                  <div className="tags">
                    <span className="pill neutral">{h.format}</span>
                    <span className="muted">in {h.project}</span>
                    {h.latest_version ? <span className="muted">latest {h.latest_version}</span> : null}
                  </div>
                  {h.description ? <p className="muted">{h.description}</p> : null}
                </li>
              ))}
            </ul>
          )
        }
      </Async>
    </section>
  );
}
