// Loads the Casebook app (WebAssembly) and registers the service worker that keeps the app
// shell available with no network. Kept in a file, not inline, so the CSP can forbid inline
// scripts.
import init from '/casebook_app.js';

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/sw.js').catch((e) => console.warn('service worker not registered', e));
}
init({ module_or_path: '/casebook_app_bg.wasm' });
