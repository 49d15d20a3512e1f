import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";

import { api, unwrap } from "../api/client";
import { ErrorBox } from "../components/States";
import { useAuth } from "../lib/auth";

export function ChangePasswordPage({ forced = false }: { forced?: boolean }) {
  const { me, login, logout } = useAuth();
  const navigate = useNavigate();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    if (next !== confirm) {
      setError(new Error("The two new passwords differ."));
      return;
    }
    setBusy(true);
    try {
      await unwrap(api.POST("/api/v1/auth/password", { body: { current_password: current, new_password: next } }));
      // Changing the password ends every session: sign in again with the new one.
      await login(me?.username ?? "", next);
      setDone(true);
      if (forced) navigate("/dashboard", { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="narrow">
      <h1>{forced ? "Choose a new password" : "Change your password"}</h1>
      {forced ? (
        <p className="notice" role="note">
          This is your first sign-in with a password someone else set. Choose your own before you continue.
        </p>
      ) : null}
      <form onSubmit={submit} className="card form" aria-label="Change password">
        <label>
          Current password
          <input type="password" name="current_password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} required autoFocus />
        </label>
        <label>
          New password
          <input type="password" name="new_password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} required />
        </label>
        <label>
          New password, again
          <input type="password" name="confirm_password" autoComplete="new-password" value={confirm} onChange={(e) => setConfirm(e.target.value)} required />
        </label>
        <ErrorBox error={error} />
        {done ? <p role="status" className="success">Password changed.</p> : null}
        <div className="row">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Saving…" : "Change password"}
          </button>
          {forced ? (
            <button type="button" className="link-button" onClick={() => void logout()}>
              Sign out
            </button>
          ) : null}
        </div>
      </form>
    </section>
  );
}
