// Shared page helpers (an ES module served from the package; no bundler, no CDN).
//   post(url, body)        -> JSON reply of a CSRF-protected POST (throws RequestError)
//   live(page, handlers)   -> the page's one WebSocket, reconnecting; handlers by message type
//   text(key)              -> a translated string the server put in <script id="i18n">
//   elapsed(sinceMs)       -> "m:ss" / "h:mm:ss" since an epoch time in ms
//   hotkeys(map)           -> key -> callback, ignored while typing in a field

const messages = (() => {
  const node = document.getElementById("i18n");
  return node ? JSON.parse(node.textContent) : {};
})();

export function text(key) {
  return messages[key] ?? key;
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export class RequestError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export async function post(url, body = {}) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      "Accept": "application/json",
      "X-CSRF-Token": csrfToken(),
    },
    body: JSON.stringify(body),
  });
  let data = {};
  try {
    data = await response.json();
  } catch (_err) {
    data = {};
  }
  if (response.status === 401) {
    window.location.assign("/signin?next=" + encodeURIComponent(window.location.pathname));
  }
  if (!response.ok) throw new RequestError(response.status, data);
  return data;
}

export async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } });
  const data = await response.json();
  if (!response.ok) throw new RequestError(response.status, data);
  return data;
}

function showStatus(state) {
  const node = document.getElementById("live-status");
  if (!node) return;
  node.dataset.state = state;
  node.textContent = text(state);
  node.hidden = state === "connected";
  document.body.dataset.live = state;
}

// One socket per page. The server sends a snapshot first on every (re)connect, so a
// reconnect or a reload rebuilds the page; pushes arrive as {"messages": [...]}.
export function live(page, handlers, params = {}) {
  let delay = 500;
  let socket = null;
  let stopped = false;
  const query = new URLSearchParams({ page, ...params });
  function open() {
    showStatus(socket ? "reconnecting" : "connecting");
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${window.location.host}/ws?${query}`);
    socket.addEventListener("open", () => {
      delay = 500;
      showStatus("connected");
    });
    socket.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data);
      for (const message of frame.messages || []) {
        const handler = handlers[message.type];
        if (handler) handler(message);
      }
    });
    socket.addEventListener("close", (event) => {
      if (stopped) return;
      showStatus("reconnecting");
      if (event.code === 1008 || event.code === 4401) {
        window.location.reload();
        return;
      }
      const wait = delay + Math.random() * delay * 0.3;
      delay = Math.min(delay * 2, 10000);
      window.setTimeout(open, wait);
    });
  }
  open();
  return { close() { stopped = true; if (socket) socket.close(); } };
}

export function elapsed(sinceMs, nowMs = Date.now()) {
  const total = Math.max(0, Math.floor((nowMs - sinceMs) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

export function hotkeys(map) {
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const action = map[event.key];
    if (action) {
      event.preventDefault();
      action(event);
    }
  });
}
