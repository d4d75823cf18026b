import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

// The Integrations panel is served by `atoll console` from dist/console/web.
// Everything ships in the bundle (no CDN); no inline scripts, so the strict
// Content-Security-Policy holds (modulepreload polyfill off: it is inlined).
export default defineConfig({
  root: here,
  base: '/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../../../dist/console/web', import.meta.url)),
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
    assetsInlineLimit: 0,
  },
});
