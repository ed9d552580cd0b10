// Builds the static web app into dist/ (what Azure Static Web Apps serves and `make dev` serves on :4280).
import { defineConfig } from "vite";

export default defineConfig({
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
    // No inline <script>/<style>: the Content-Security-Policy in staticwebapp.config.json forbids them.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  server: {
    port: 5173,
    // `npm run dev` (hot reload) against `make dev`'s host: same-origin /api, as on Static Web Apps.
    proxy: { "/api": "http://127.0.0.1:7071" },
  },
});
