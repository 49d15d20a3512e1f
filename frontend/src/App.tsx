import { useEffect, useRef, useState, type ReactNode } from "react";
import { Link, Navigate, NavLink, Route, Routes, useLocation, useNavigate } from "react-router-dom";

import { Loading } from "./components/States";
import { isSignedIn, useAuth } from "./lib/auth";
import { ArtifactPage } from "./routes/Artifact";
import { AuditPage } from "./routes/admin/Audit";
import { UpstreamsPage } from "./routes/admin/Upstreams";
import { UsersPage } from "./routes/admin/Users";
import { ChangePasswordPage } from "./routes/ChangePassword";
import { DashboardPage } from "./routes/Dashboard";
import { LoginPage } from "./routes/Login";
import { PackagePage } from "./routes/Package";
import { ProjectPage } from "./routes/Project";
import { ProjectsPage } from "./routes/Projects";
import { SearchPage } from "./routes/Search";
import { TokensPage } from "./routes/Tokens";
import { UploadPage } from "./routes/Upload";
import { VersionPage } from "./routes/Version";

function RequireUser({ admin = false, children }: { admin?: boolean; children: ReactNode }) {
  const { me } = useAuth();
  const location = useLocation();
  if (!isSignedIn(me)) return <Navigate to={`/login?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
  if (admin && !me.is_admin) {
    return (
      <section>
        <h1>Administrators only</h1>
        <p>This page is for Orchard administrators.</p>
      </section>
    );
  }
  return <>{children}</>;
}

function Header() {
  const { me, logout } = useAuth();
  const navigate = useNavigate();
  const [open, setOpen] = useState(false);
  const location = useLocation();
  useEffect(() => setOpen(false), [location.pathname]);
  const signedIn = isSignedIn(me);
  // Until the first password is changed, only signing out is possible.
  const limited = signedIn && me.must_change_password;
  const link = ({ isActive }: { isActive: boolean }) => (isActive ? "active" : undefined);
  return (
    <header className="topbar">
      <Link to="/" className="brand" aria-label="Orchard home">
        <img src="/favicon.svg" alt="" width="24" height="24" />
        Orchard
      </Link>
      <button
        type="button"
        className="menu-toggle"
        aria-expanded={open}
        aria-controls="main-nav"
        onClick={() => setOpen((o) => !o)}
      >
        Menu
      </button>
      <nav id="main-nav" aria-label="Main" className={open ? "open" : undefined}>
        {limited ? null : (
          <>
            <NavLink to="/projects" className={link}>Projects</NavLink>
            <NavLink to="/search" className={link}>Search</NavLink>
          </>
        )}
        {signedIn && !limited ? <NavLink to="/upload" className={link}>Upload</NavLink> : null}
        {signedIn && !limited ? <NavLink to="/dashboard" className={link}>Dashboard</NavLink> : null}
        {signedIn && !limited ? <NavLink to="/tokens" className={link}>Tokens</NavLink> : null}
        {signedIn && !limited && me.is_admin ? (
          <>
            <NavLink to="/admin/users" className={link}>Users</NavLink>
            <NavLink to="/admin/upstreams" className={link}>Upstreams</NavLink>
            <NavLink to="/admin/audit" className={link}>Audit log</NavLink>
          </>
        ) : null}
        <span className="nav-spacer" />
        {signedIn ? (
          <span className="who">
            <span className="muted" data-testid="signed-in-as">{me.username}</span>
            <button
              type="button"
              className="link-button"
              onClick={() => void logout().then(() => navigate("/login"))}
            >
              Sign out
            </button>
          </span>
        ) : (
          <NavLink to="/login" className={link}>Sign in</NavLink>
        )}
      </nav>
    </header>
  );
}

/** Move focus to the page heading after navigation (screen readers, keyboard). */
function useFocusOnNavigate(ref: React.RefObject<HTMLElement>) {
  const location = useLocation();
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    ref.current?.focus();
  }, [location.pathname, ref]);
}

export function App() {
  const { me, loading } = useAuth();
  const main = useRef<HTMLElement>(null);
  useFocusOnNavigate(main);
  if (loading) return <Loading label="Starting Orchard…" />;
  const mustChange = isSignedIn(me) && me.must_change_password;
  return (
    <>
      <a href="#main" className="skip-link">Skip to content</a>
      <Header />
      <main id="main" ref={main} tabIndex={-1}>
        {mustChange ? (
          <ChangePasswordPage forced />
        ) : (
          <Routes>
            <Route path="/" element={<Navigate to={isSignedIn(me) ? "/dashboard" : "/projects"} replace />} />
            <Route path="/login" element={<LoginPage />} />
            <Route path="/change-password" element={<RequireUser><ChangePasswordPage /></RequireUser>} />
            <Route path="/projects" element={<ProjectsPage />} />
            <Route path="/projects/:project" element={<ProjectPage />} />
            <Route path="/projects/:project/packages/:pkg" element={<PackagePage />} />
            <Route path="/projects/:project/packages/:pkg/versions/:version" element={<VersionPage />} />
            <Route path="/artifacts/:sha256" element={<ArtifactPage />} />
            <Route path="/search" element={<SearchPage />} />
            <Route path="/upload" element={<RequireUser><UploadPage /></RequireUser>} />
            <Route path="/tokens" element={<RequireUser><TokensPage /></RequireUser>} />
            <Route path="/dashboard" element={<RequireUser><DashboardPage /></RequireUser>} />
            <Route path="/admin/users" element={<RequireUser admin><UsersPage /></RequireUser>} />
            <Route path="/admin/upstreams" element={<RequireUser admin><UpstreamsPage /></RequireUser>} />
            <Route path="/admin/audit" element={<RequireUser admin><AuditPage /></RequireUser>} />
            <Route
              path="*"
              element={
                <section>
                  <h1>Page not found</h1>
                  <p>
                    Nothing lives at this address. <Link to="/projects">Browse the projects</Link>.
                  </p>
                </section>
              }
            />
          </Routes>
        )}
      </main>
    </>
  );
}
