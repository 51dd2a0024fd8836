import { api, boot, el, pager, params, showError, when } from "./app.js";

const LIMIT = 50;
const form = document.getElementById("filters");
const FIELDS = ["actor", "action", "target", "since", "until"];

function change(e) {
  if (!e.before && !e.after) return "";
  return `${e.before ? JSON.stringify(e.before) : "∅"} → ${e.after ? JSON.stringify(e.after) : "∅"}`;
}

async function render() {
  const q = params();
  const search = new URLSearchParams({ limit: LIMIT, offset: Number(q.get("offset") || 0) });
  for (const f of FIELDS) {
    const value = q.get(f) || "";
    document.getElementById(f).value = value;
    if (!value) continue;
    // datetime-local has no zone: the browser's own, as the API wants it explicit.
    search.set(f, f === "since" || f === "until" ? new Date(value).toISOString() : value);
  }
  let list;
  try {
    list = await api("GET", "/api/v1/audit?" + search);
    showError("audit-error", null);
  } catch (err) {
    return showError("audit-error", err);
  }
  const body = document.querySelector("#events tbody");
  body.replaceChildren(
    ...list.items.map((e) =>
      el("tr", {},
        el("td", {}, when(e.at)),
        el("td", {}, e.actor),
        el("td", {}, e.action),
        el("td", {}, e.target),
        el("td", { class: "mono" }, change(e)),
      ),
    ),
  );
  if (!list.items.length) body.append(el("tr", {}, el("td", { colspan: 5 }, "No event matches.")));
  const offset = Number(q.get("offset") || 0);
  pager(list.total, LIMIT, offset, (o) => go(o));
}

function go(offset) {
  const q = new URLSearchParams();
  for (const f of FIELDS) {
    const value = document.getElementById(f).value.trim();
    if (value) q.set(f, value);
  }
  if (offset) q.set("offset", offset);
  history.pushState(null, "", "/audit" + (q.toString() ? "?" + q : ""));
  render();
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  go(0);
});
window.addEventListener("popstate", render);
boot(render);
