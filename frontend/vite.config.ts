import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

declare const process: { env: Record<string, string | undefined> };

// `npm run dev` proxies the API to a local `orchard serve` (ORCHARD_DEV_API).
const api = process.env.ORCHARD_DEV_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", sourcemap: false, chunkSizeWarningLimit: 600 },
  server: {
    proxy: Object.fromEntries(
      ["/api", "/health", "/pypi", "/npm", "/go"].map((p) => [p, { target: api, changeOrigin: false }]),
    ),
  },
  test: { include: ["tests/**/*.test.{ts,tsx}"], environment: "node" },
});
