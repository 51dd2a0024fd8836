import { allows, api, boot, el, pager, params, showError } from "./app.js";

const LIMIT = 20;
const form = document.getElementById("search");

function serving(deployment) {
  if (!deployment) return "";
  const p = deployment.policy;
  const parts = [];
  if (deployment.primary_version) parts.push(`${p.alias} → v${deployment.primary_version}`);
  else parts.push(`${p.alias}: no version`);
  if (p.canary) parts.push(`canary v${p.canary.version} at ${p.canary.percent}%`);
  if (p.shadow) parts.push(`shadow v${p.shadow.version}`);
  return parts.join(", ");
}

let latest = 0;

async function render() {
  const mine = ++latest; // an older answer arriving late must not replace a newer one
  const q = params();
  form.prefix.value = q.get("prefix") || "";
  form.tag.value = q.get("tag") || "";
  const offset = Number(q.get("offset") || 0);
  const search = new URLSearchParams({ limit: LIMIT, offset });
  if (form.prefix.value) search.set("prefix", form.prefix.value);
  if (form.tag.value) search.set("tag", form.tag.value);
  const body = document.querySelector("#models tbody");
  const table = document.getElementById("models");
  table.setAttribute("aria-busy", "true");
  let list;
  let deployments;
  try {
    list = await api("GET", "/api/v1/models?" + search);
    deployments = await Promise.all(
      list.items.map((m) => api("GET", `/api/v1/models/${encodeURIComponent(m.name)}/deployment`).catch(() => null)),
    );
  } catch (err) {
    if (mine === latest) showError("list-error", err);
    return;
  }
  if (mine !== latest) return;
  showError("list-error", null);
  body.replaceChildren(
    ...list.items.map((m, i) =>
      el("tr", {},
        el("td", {}, el("a", { href: `/models/${encodeURIComponent(m.name)}` }, m.name)),
        el("td", {}, m.latest_version ? `v${m.latest_version}` : "none"),
        el("td", {}, m.aliases.map((a) => `${a.name} → v${a.version}`).join(", ")),
        el("td", {}, serving(deployments[i])),
        el("td", {}, Object.entries(m.tags).map(([k, v]) => (v ? `${k}:${v}` : k)).join(", ")),
      ),
    ),
  );
  if (!list.items.length) body.append(el("tr", {}, el("td", { colspan: 5 }, "No model matches.")));
  pager(list.total, LIMIT, offset, (o) => go({ offset: o }));
  table.removeAttribute("aria-busy");
}

function go(changes) {
  const q = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === "" || v === 0) q.delete(k);
    else q.set(k, v);
  }
  history.pushState(null, "", "/models" + (q.toString() ? "?" + q : ""));
  render();
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  go({ prefix: form.prefix.value.trim(), tag: form.tag.value.trim(), offset: 0 });
});
window.addEventListener("popstate", render);

const create = document.getElementById("create-form");
create.addEventListener("submit", async (e) => {
  e.preventDefault();
  showError("create-error", null);
  try {
    const model = await api("POST", "/api/v1/models", {
      name: document.getElementById("new-name").value.trim(),
      description: document.getElementById("new-description").value,
    });
    location.assign(`/models/${encodeURIComponent(model.name)}`);
  } catch (err) {
    showError("create-error", err);
    document.getElementById("new-name").focus();
  }
});

boot(render);
