// Casebook service worker: caches the app shell (static files only) so the app opens, every
// page of it, with no network. The shell includes the module of the pages split off the
// first download and its loader: the build writes their names into SHELL. It never caches
// API responses: case data lives encrypted-at-rest in IndexedDB, handled by the app, not
// here. The cache name changes with every build (__BUILD__ is replaced by a fingerprint of
// the bundle and the split-off module), and old caches are removed on activation. A page the
// new worker takes over from an older one offers a reload (app/src/components/update_notice.rs).
const CACHE = 'casebook-shell-__BUILD__';
const SHELL = ['/', '/index.html', '/boot.js', '/casebook_app.js', '/casebook_app_bg.wasm', '/style.css', '/manifest.webmanifest', '__SPLIT__'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('casebook-shell-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.startsWith('/api/')) {
    return; // the network, untouched: API calls and case data are never cached here
  }
  if (event.request.mode === 'navigate') {
    // Pages: the network when it answers, else the cached shell.
    event.respondWith(fetch(event.request).catch(() => caches.match('/index.html')));
    return;
  }
  event.respondWith(caches.match(event.request).then((hit) => hit || fetch(event.request)));
});
