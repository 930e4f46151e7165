// Builds the dashboard into web/dist, which `coffer server` serves. `npm run dev:web` serves it with
// hot reload and sends /api to a server on COFFER_DEV_SERVER (default http://127.0.0.1:8470).
import react from '@vitejs/plugin-react';
import tailwindcss from '@tailwindcss/vite';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  plugins: [react(), tailwindcss()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
  },
  server: {
    proxy: { '/api': { target: process.env.COFFER_DEV_SERVER ?? 'http://127.0.0.1:8470', changeOrigin: false } },
  },
});
