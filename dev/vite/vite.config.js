// The Vite dev server in front of bffgate (docs/spa.md, "Developing with Vite"). The browser
// talks to Vite only: it serves the SPA with hot reload and passes /bff and the API routes to
// bffgate, so the session cookie, the login redirects and the CSRF checks work as in
// production. bffgate runs with BFF_PUBLIC_URL=http://localhost:5173 (Vite's origin), and the
// IdP knows http://localhost:5173/bff/callback as a redirect URI.
import { defineConfig } from 'vite'

const bffgate = process.env.BFFGATE_URL ?? 'http://127.0.0.1:8080'

export default defineConfig({
  server: {
    port: 5173,
    strictPort: true, // the IdP's redirect URI names this port
    proxy: {
      // Not changeOrigin: bffgate checks Origin against BFF_PUBLIC_URL, which is Vite's origin.
      '/bff': { target: bffgate },
      // One entry per BFF_ROUTES path; ws: true for a route with "websocket": true.
      '/api': { target: bffgate, ws: true },
    },
  },
})
