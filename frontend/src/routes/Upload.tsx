import { useRef, useState, type DragEvent, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { api, unwrap, type UploadResult } from "../api/client";
import { errorMessage } from "../api/errors";
import { ProgressBar } from "../components/ProgressBar";
import { Async, Empty } from "../components/States";
import { formatBytes, shortHash } from "../lib/format";
import { refSegment } from "../lib/links";
import { RESUMABLE_THRESHOLD, uploadFile, useResumable, type Progress } from "../lib/upload";
import { useLoad } from "../lib/useLoad";

interface Item {
  key: string;
  file: File;
  progress: Progress;
  result?: UploadResult;
  error?: string;
  resumable: boolean;
}

export function UploadPage() {
  const [params] = useSearchParams();
  const projects = useLoad(() => unwrap(api.GET("/api/v1/projects", { params: { query: { limit: 1000 } } })), []);
  const [project, setProject] = useState(params.get("project") ?? "");
  const [pkg, setPkg] = useState(params.get("package") ?? "");
  const [version, setVersion] = useState("");
  const [items, setItems] = useState<Item[]>([]);
  const [pending, setPending] = useState<File[]>([]);
  const [dragging, setDragging] = useState(false);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  const update = (key: string, patch: Partial<Item>) =>
    setItems((list) => list.map((it) => (it.key === key ? { ...it, ...patch } : it)));

  function addFiles(files: FileList | File[]) {
    setPending((p) => [...p, ...Array.from(files)]);
  }

  function onDrop(e: DragEvent) {
    e.preventDefault();
    setDragging(false);
    if (e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
  }

  async function run(list: Item[]) {
    setBusy(true);
    for (const it of list) {
      try {
        const result = await uploadFile(
          it.file,
          { project, pkg: pkg.trim(), version: version.trim(), filename: it.file.name },
          (progress) => update(it.key, { progress }),
        );
        update(it.key, { result, error: undefined, progress: { phase: "done", loaded: it.file.size, total: it.file.size } });
      } catch (err) {
        update(it.key, { error: errorMessage(err) });
      }
    }
    setBusy(false);
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    if (!pending.length) return;
    const created = pending.map((file, i) => ({
      key: `${Date.now()}-${i}-${file.name}`,
      file,
      progress: { phase: "preparing" as const, loaded: 0, total: file.size },
      resumable: useResumable(file.size),
    }));
    setItems((old) => [...created, ...old]);
    setPending([]);
    void run(created);
  }

  const target = `/projects/${encodeURIComponent(project)}/packages/${refSegment(pkg.trim())}`;

  return (
    <section>
      <h1>Upload files</h1>
      <p className="muted">
        Files up to {formatBytes(RESUMABLE_THRESHOLD)} go in one request; larger ones are sent in chunks and resume after an
        interruption (retry with the same file to continue).
      </p>
      <form className="card form" onSubmit={submit} aria-label="Upload">
        <div className="grid three">
          <label>
            Project
            <Async state={projects} label="Loading projects…">
              {(ps) => {
                const writable = ps.filter((p) => !p.builtin);
                return writable.length === 0 ? (
                  <Empty title="No project yet."><Link to="/projects">Create one first.</Link></Empty>
                ) : (
                  <select name="project" value={project} onChange={(e) => setProject(e.target.value)} required>
                    <option value="">Choose a project</option>
                    {writable.map((p) => <option key={p.name} value={p.name}>{p.name}</option>)}
                  </select>
                );
              }}
            </Async>
          </label>
          <label>
            Package
            <input name="package" value={pkg} onChange={(e) => setPkg(e.target.value)} required placeholder="e.g. hello" />
          </label>
          <label>
            Version
            <input name="version" value={version} onChange={(e) => setVersion(e.target.value)} required placeholder="e.g. 1.0.0" />
          </label>
        </div>
        <div
          className={`dropzone${dragging ? " dragging" : ""}`}
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
          data-testid="dropzone"
        >
          <p>
            <strong>Drop files here</strong> or{" "}
            <button type="button" className="link-button" onClick={() => input.current?.click()}>
              choose files
            </button>
          </p>
          <input
            ref={input}
            type="file"
            multiple
            className="sr-only"
            aria-label="Choose files to upload"
            onChange={(e) => {
              if (e.target.files) addFiles(e.target.files);
              e.target.value = "";
            }}
          />
          {pending.length ? (
            <ul className="list" aria-label="Files to upload">
              {pending.map((f, i) => (
                <li key={`${f.name}-${i}`}>
                  {f.name} <span className="muted">{formatBytes(f.size)}</span>
                  <button type="button" className="link-button" onClick={() => setPending((p) => p.filter((_, j) => j !== i))} aria-label={`Remove ${f.name}`}>
                    remove
                  </button>
                </li>
              ))}
            </ul>
          ) : null}
        </div>
        <button type="submit" className="primary" disabled={busy || !pending.length || !project}>
          {busy ? "Uploading…" : pending.length ? `Upload ${pending.length} file${pending.length === 1 ? "" : "s"}` : "Upload files"}
        </button>
      </form>
      {items.length ? (
        <ul className="uploads" aria-label="Uploads">
          {items.map((it) => (
            <li key={it.key} className="card" data-upload={it.file.name} data-state={it.error ? "error" : it.result ? "done" : "running"}>
              <div className="row spread">
                <strong>{it.file.name}</strong>
                <span className="muted">{it.resumable ? "chunked, resumable" : "single request"}</span>
              </div>
              <ProgressBar loaded={it.progress.loaded} total={it.progress.total || it.file.size} label={`Upload of ${it.file.name}`} />
              {it.error ? (
                <p role="alert" className="error-text">
                  {it.error}{" "}
                  <button type="button" className="link-button" onClick={() => void run([{ ...it, error: undefined }])}>
                    {it.resumable ? "Resume" : "Retry"}
                  </button>
                </p>
              ) : null}
              {it.result ? (
                <p role="status" className="success">
                  Stored as <Link to={`/artifacts/${it.result.sha256}`}><code>{shortHash(it.result.sha256)}</code></Link>
                  {it.result.created ? "" : " (this file was already there, with the same content)"} ·{" "}
                  <Link to={`${target}/versions/${encodeURIComponent(it.result.version)}`}>view version {it.result.version}</Link>
                </p>
              ) : null}
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
