import { useState, type FormEvent } from "react";

import { api, unwrap, type User } from "../../api/client";
import { Async, Empty, ErrorBox } from "../../components/States";
import { formatDate } from "../../lib/format";
import { useAuth } from "../../lib/auth";
import { useLoad } from "../../lib/useLoad";

export function UsersPage() {
  const { me } = useAuth();
  const state = useLoad(() => unwrap(api.GET("/api/v1/users")), []);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [isAdmin, setIsAdmin] = useState(false);
  const [mustChange, setMustChange] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState("");

  async function create(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setMessage("");
    try {
      const u = await unwrap(api.POST("/api/v1/users", { body: { username: username.trim(), password, is_admin: isAdmin, must_change_password: mustChange } }));
      setMessage(`User ${u.username} created.`);
      setUsername("");
      setPassword("");
      state.reload();
    } catch (err) {
      setError(err);
    }
  }

  async function patch(u: User, body: { is_admin?: boolean; disabled?: boolean; password?: string }) {
    setError(null);
    setMessage("");
    try {
      await unwrap(api.PATCH("/api/v1/users/{username}", { params: { path: { username: u.username } }, body }));
      if (body.password) setMessage(`Password of ${u.username} reset; they must change it at their next sign-in.`);
      state.reload();
    } catch (err) {
      setError(err);
    }
  }

  return (
    <section>
      <h1>Users</h1>
      <form className="card form inline" onSubmit={create} aria-label="New user">
        <label>
          User name
          <input name="new_username" value={username} onChange={(e) => setUsername(e.target.value)} required autoComplete="off" />
        </label>
        <label>
          Initial password
          <input name="new_password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} required autoComplete="new-password" />
        </label>
        <label className="check">
          <input type="checkbox" name="is_admin" checked={isAdmin} onChange={(e) => setIsAdmin(e.target.checked)} />
          Administrator
        </label>
        <label className="check">
          <input type="checkbox" name="must_change" checked={mustChange} onChange={(e) => setMustChange(e.target.checked)} />
          Must change password
        </label>
        <button type="submit" className="primary">Create user</button>
      </form>
      <ErrorBox error={error} />
      {message ? <p role="status" className="success">{message}</p> : null}
      <Async state={state} label="Loading users…">
        {(users) =>
          users.length === 0 ? (
            <Empty title="No users." />
          ) : (
            <div className="table-wrap">
              <table className="table" aria-label="Users">
                <thead>
                  <tr>
                    <th scope="col">User</th>
                    <th scope="col">Role</th>
                    <th scope="col">State</th>
                    <th scope="col">Created</th>
                    <th scope="col"><span className="sr-only">Actions</span></th>
                  </tr>
                </thead>
                <tbody>
                  {users.map((u) => (
                    <tr key={u.username} data-user={u.username}>
                      <td>{u.username}</td>
                      <td>{u.is_admin ? <span className="pill warn">admin</span> : "user"}</td>
                      <td>
                        {u.disabled ? <span className="pill bad">disabled</span> : <span className="pill good">active</span>}
                        {u.must_change_password ? <span className="pill neutral">must change password</span> : null}
                      </td>
                      <td>{formatDate(u.created_at)}</td>
                      <td className="row">
                        {u.username !== me?.username ? (
                          <>
                            <button type="button" className="small" onClick={() => void patch(u, { is_admin: !u.is_admin })}>
                              {u.is_admin ? "Make user" : "Make admin"}
                            </button>
                            <button type="button" className="small" onClick={() => void patch(u, { disabled: !u.disabled })}>
                              {u.disabled ? "Enable" : "Disable"}
                            </button>
                            <button
                              type="button"
                              className="small"
                              onClick={() => {
                                const pw = window.prompt(`New temporary password for ${u.username}`);
                                if (pw) void patch(u, { password: pw });
                              }}
                            >
                              Reset password
                            </button>
                          </>
                        ) : (
                          <span className="muted">you</span>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Async>
    </section>
  );
}
