// Shared by every page: the session, API calls, building the DOM without HTML strings.
// Text goes in with textContent only, so a model name holding <script> shows as text.

const ROLES = { viewer: 0, editor: 1, admin: 2 };
let csrf = null;
export let me = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function errorOf(response) {
  let code = "http_" + response.status;
  let message = response.status + " " + response.statusText;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch (_) {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message);
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", "the platform did not answer: " + err.message);
  }
  if (response.status === 401 && path !== "/api/v1/auth/session") toLogin();
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  return response.json();
}

// An upload with a progress bar (fetch reports no upload progress).
export function upload(path, form, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("X-CSRF-Token", csrf || "");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (_) {
        // not JSON
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        progress.value = 100;
        resolve(body);
      } else {
        const e = (body && body.error) || {};
        reject(new ApiError(xhr.status, e.code || "http_" + xhr.status, e.message || xhr.statusText));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "the upload did not reach the platform")));
    xhr.send(form);
  });
}

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function showError(id, err) {
  const box = document.getElementById(id);
  if (!box) return;
  if (!err) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.textContent = err.status ? `${err.message} (${err.status} ${err.code})` : String(err.message || err);
  box.hidden = false;
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(typeof iso === "number" ? iso * 1000 : iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function allows(role) {
  return me !== null && ROLES[me.role] >= ROLES[role];
}

function toLogin() {
  const next = location.pathname + location.search;
  location.replace("/login?next=" + encodeURIComponent(next));
}

function applyRole() {
  for (const node of document.querySelectorAll("[data-needs]")) {
    if (allows(node.dataset.needs)) node.hidden = false;
    else node.remove(); // a viewer gets no write control at all, not a hidden one
  }
}

export function confirmDialog(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("confirm-no").focus();
  });
}

// Query-string state, so a search or a page is a URL (bookmarks, back button).
export function params() {
  return new URLSearchParams(location.search);
}

export function pager(total, limit, offset, go) {
  const prev = document.getElementById("prev");
  const next = document.getElementById("next");
  const info = document.getElementById("page-info");
  info.textContent = total ? `${offset + 1}-${Math.min(offset + limit, total)} of ${total}` : "none";
  prev.hidden = offset <= 0;
  next.hidden = offset + limit >= total;
  prev.onclick = (e) => { e.preventDefault(); go(Math.max(0, offset - limit)); };
  next.onclick = (e) => { e.preventDefault(); go(offset + limit); };
}

// A page restored from the back/forward cache after sign-out must not show its data.
window.addEventListener("pageshow", (e) => {
  if (e.persisted) location.reload();
});

export async function boot(render) {
  try {
    const session = await api("GET", "/api/v1/auth/session");
    csrf = session.csrf_token;
    me = session;
  } catch (err) {
    if (err.status === 401) return toLogin();
    document.getElementById("main").prepend(el("p", { role: "alert", class: "error" }, err.message));
    return;
  }
  document.getElementById("who").textContent = `${me.username} (${me.role})`;
  document.getElementById("nav").hidden = false;
  applyRole();
  document.getElementById("sign-out").addEventListener("click", async () => {
    try {
      await api("DELETE", "/api/v1/auth/session");
    } finally {
      location.replace("/login");
    }
  });
  await render();
  performance.mark("ready");
  document.body.dataset.ready = "true"; // for tests and scripts: the page has its data
}
