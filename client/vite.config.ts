// Built by `make client` into client/dist/, which the merchant server serves at /shop/
// (tutorial_server/shop.py). `base: './'` makes every asset URL relative to the page, so the
// same build works at /shop/ and behind JupyterHub's proxy prefix.
import {defineConfig} from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  base: "./",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // No module-preload polyfill: every browser the lab supports preloads modules itself.
    modulePreload: {polyfill: false},
  },
});
