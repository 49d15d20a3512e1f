import { describe, expect, test } from "vitest";

import { installInstructions, shellQuote } from "../src/lib/install";

const base = { baseUrl: "http://orchard.test:8080/", project: "team a" };

describe("installInstructions", () => {
  test("pypi: pip and uv against the project's simple index, plus curl", () => {
    const steps = installInstructions({ ...base, pkg: "Hello_World", format: "pypi", version: "1.0", filename: "hello_world-1.0-py3-none-any.whl" });
    expect(steps.map((s) => s.id)).toEqual(["pip", "uv", "curl"]);
    expect(steps[0].command).toBe("pip install --index-url http://orchard.test:8080/pypi/team%20a/simple/ Hello_World==1.0");
    expect(steps[1].command).toBe("uv pip install --index-url http://orchard.test:8080/pypi/team%20a/simple/ Hello_World==1.0");
    expect(steps[2].command).toBe(
      "curl -fL -o hello_world-1.0-py3-none-any.whl http://orchard.test:8080/api/v1/project/team%20a/packages/pypi:Hello_World/versions/1.0/files/hello_world-1.0-py3-none-any.whl",
    );
  });

  test("npm: scoped names and the project's registry", () => {
    const [npm] = installInstructions({ ...base, pkg: "@scope/lib", format: "npm", version: "2.1.0" });
    expect(npm.id).toBe("npm");
    expect(npm.command).toBe("npm install --registry http://orchard.test:8080/npm/team%20a/ @scope/lib@2.1.0");
  });

  test("go: GOPROXY on the project, latest without a version", () => {
    const [go] = installInstructions({ ...base, pkg: "example.com/mod", format: "go" });
    expect(go.command).toBe("GOPROXY=http://orchard.test:8080/go/team%20a GOFLAGS=-mod=mod go get example.com/mod@latest");
  });

  test("generic: curl of a file; private projects add a token header", () => {
    const steps = installInstructions({ ...base, pkg: "tool", format: "generic", version: "1.0.0", filename: "tool linux.tar.gz", isPublic: false });
    expect(steps).toHaveLength(1);
    expect(steps[0].command).toBe(
      `curl -fL -H "Authorization: Bearer $ORCHARD_TOKEN" -o 'tool linux.tar.gz' http://orchard.test:8080/api/v1/project/team%20a/packages/generic:tool/versions/1.0.0/files/tool%20linux.tar.gz`,
    );
    expect(steps[0].note).toMatch(/token/);
  });

  test("generic without a known file lists the versions", () => {
    const steps = installInstructions({ ...base, pkg: "tool", format: "generic", version: null });
    expect(steps[0].command).toBe("curl -fsS http://orchard.test:8080/api/v1/project/team%20a/packages/generic:tool/versions");
  });

  test("shellQuote", () => {
    expect(shellQuote("abc-1.0")).toBe("abc-1.0");
    expect(shellQuote("pkg>=1,<2")).toBe("'pkg>=1,<2'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });
});
