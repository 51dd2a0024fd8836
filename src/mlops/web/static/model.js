import { allows, api, boot, confirmDialog, el, showError, upload, when } from "./app.js";

const name = document.body.dataset.model;
const base = `/api/v1/models/${encodeURIComponent(name)}`;
let versions = [];

function say(text) {
  document.getElementById("model-status").textContent = text;
}

async function lastMove(alias) {
  // The history's newest event says where a rollback goes.
  const first = await api("GET", `${base}/aliases/${encodeURIComponent(alias)}/history?limit=1`);
  if (!first.total) return null;
  const page = await api("GET", `${base}/aliases/${encodeURIComponent(alias)}/history?limit=1&offset=${first.total - 1}`);
  return page.events[0] || null;
}

async function showHistory(alias, cell) {
  const history = await api("GET", `${base}/aliases/${encodeURIComponent(alias)}/history?limit=100`);
  cell.replaceChildren(
    el("ol", { class: "history" },
      history.events.map((e) =>
        el("li", {}, `${when(e.at)}: ${e.action} ${e.from_version ? "v" + e.from_version : "none"} → ${e.to_version ? "v" + e.to_version : "none"} by ${e.actor}`),
      ),
    ),
  );
}

async function rollback(alias) {
  showError("model-error", null);
  let event;
  try {
    event = await lastMove(alias);
  } catch (err) {
    return showError("model-error", err);
  }
  const target = event && event.from_version;
  if (!target) {
    return showError("model-error", new Error(`${alias} has no earlier version to roll back to.`));
  }
  // From the history just read, not from the table: it may be older than the alias.
  const current = event.to_version;
  if (!(await confirmDialog(`Roll back ${alias} of ${name} from v${current} to v${target}?`))) return;
  let done = null;
  try {
    const moved = await api("POST", `${base}/aliases/${encodeURIComponent(alias)}/rollback`);
    done = `${alias} rolled back from v${moved.previous_version} to v${moved.version}.`;
  } catch (err) {
    showError("model-error", err);
  }
  await render();
  if (done) say(done);
}

function renderAliases(model) {
  const body = document.querySelector("#aliases tbody");
  body.replaceChildren(
    ...model.aliases.map((a) => {
      const historyCell = el("td", {},
        el("button", { type: "button", onclick: () => showHistory(a.name, historyCell).catch((err) => showError("model-error", err)) }, `Show history of ${a.name}`),
      );
      return el("tr", {},
        el("th", { scope: "row" }, a.name),
        el("td", {}, `v${a.version}`),
        el("td", {}, a.updated_by),
        el("td", {}, when(a.updated_at)),
        historyCell,
        allows("editor")
          ? el("td", {}, el("button", { type: "button", onclick: () => rollback(a.name) }, `Roll back ${a.name}`))
          : null,
      );
    }),
  );
  if (!model.aliases.length) body.append(el("tr", {}, el("td", { colspan: 6 }, "No alias yet: promote a version.")));
}

function lineage(v) {
  const l = v.lineage;
  return [l.source_uri, l.git_commit && `commit ${l.git_commit}`, l.run_id && `run ${l.run_id}`, l.dataset_sha256 && `data ${l.dataset_sha256.slice(0, 12)}`]
    .filter(Boolean).join(", ");
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1 << 20) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

function renderVersions() {
  const table = el("table", {},
    el("caption", { class: "visually-hidden" }, "Versions"),
    el("thead", {}, el("tr", {}, ["Version", "Status", "Format", "Runtime", "Size", "sha256", "Metrics", "Lineage", "Aliases", "By", "When"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {},
      versions.map((v) =>
        el("tr", {},
          el("th", { scope: "row" }, `v${v.version}`),
          el("td", {}, v.status),
          el("td", {}, v.format),
          el("td", {}, Object.values(v.runtime || {}).filter((x) => typeof x === "string").join(" ")),
          el("td", {}, size(v.size)),
          el("td", { class: "mono", title: v.sha256 }, v.sha256.slice(0, 16) + "…"),
          el("td", {}, Object.entries(v.metrics).map(([k, x]) => `${k}=${x}`).join(", ")),
          el("td", {}, lineage(v)),
          el("td", {}, v.aliases.join(", ")),
          el("td", {}, v.created_by),
          el("td", {}, when(v.created_at)),
        ),
      ),
    ),
  );
  document.getElementById("versions").replaceChildren(versions.length ? table : el("p", {}, "No version yet."));
  const select = document.getElementById("promote-version");
  if (select) {
    select.replaceChildren(...versions.slice().reverse().map((v) => el("option", { value: v.version }, `v${v.version}`)));
  }
}

async function render() {
  let model;
  try {
    model = await api("GET", base);
    const list = await api("GET", `${base}/versions?limit=500`);
    versions = list.items;
  } catch (err) {
    return showError("model-error", err);
  }
  document.getElementById("model-name").textContent = model.name;
  document.getElementById("crumb").textContent = model.name;
  document.getElementById("model-description").textContent = model.description;
  document.getElementById("deployment-link").href = `/models/${encodeURIComponent(name)}/deployment`;
  document.getElementById("live-link").href = `/models/${encodeURIComponent(name)}/live`;
  renderAliases(model);
  renderVersions();
}

const promote = document.getElementById("promote-form");
promote.addEventListener("submit", async (e) => {
  e.preventDefault();
  showError("model-error", null);
  const alias = document.getElementById("promote-alias").value.trim();
  const version = Number(document.getElementById("promote-version").value);
  const current = versions.find((v) => v.aliases.includes(alias));
  const from = current ? `from v${current.version} ` : "";
  if (!(await confirmDialog(`Move ${alias} of ${name} ${from}to v${version}?`))) return;
  let done = null;
  try {
    await api("PUT", `${base}/aliases/${encodeURIComponent(alias)}`, { version });
    done = `${alias} now points at v${version}.`;
  } catch (err) {
    showError("model-error", err);
  }
  await render();
  if (done) say(done); // once the tables show the change
});

const uploadForm = document.getElementById("upload-form");
const fileInput = document.getElementById("upload-file");
const drop = document.getElementById("drop-zone");
let dropped = null;
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  dropped = e.dataTransfer.files[0] || null;
  if (dropped) drop.dataset.file = dropped.name;
  say(dropped ? `${dropped.name} ready to upload.` : "");
});
fileInput.addEventListener("change", () => { dropped = null; });
uploadForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  showError("upload-error", null);
  const file = dropped || fileInput.files[0];
  if (!file) return showError("upload-error", new Error("Choose or drop a model file first."));
  const form = new FormData();
  form.append("file", file, file.name);
  const metadata = document.getElementById("upload-metadata").value.trim();
  if (metadata) form.append("metadata", metadata);
  const progress = document.getElementById("upload-progress");
  progress.value = 0;
  let done = null;
  try {
    const version = await upload(`${base}/versions`, form, progress);
    done = `Uploaded ${file.name} as v${version.version}.`;
    dropped = null;
    uploadForm.reset();
  } catch (err) {
    progress.value = 0;
    showError("upload-error", err);
  }
  await render();
  if (done) say(done);
});

boot(render);
