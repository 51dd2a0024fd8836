import { api, boot, el, pager, params, showError, upload, when } from "./app.js";

const LIMIT = 20;
let timer = null;

function progress(job) {
  const total = job.rows_total || 0;
  const pct = job.status === "succeeded" ? 100 : total ? Math.floor((100 * job.rows_done) / total) : 0;
  return el("td", {},
    el("progress", { max: 100, value: pct, "aria-label": `Job ${job.id} progress` }),
    ` ${pct}%`,
  );
}

function output(job) {
  if (job.status === "failed") return el("td", {}, job.error || "failed");
  if (job.download) return el("td", {}, el("a", { href: `/api/v1/jobs/${job.id}/output`, download: "" }, `Download job ${job.id} output`));
  return el("td", {}, job.output || "");
}

async function render() {
  const offset = Number(params().get("offset") || 0);
  let list;
  try {
    list = await api("GET", `/api/v1/jobs?limit=${LIMIT}&offset=${offset}`);
    showError("jobs-error", null);
  } catch (err) {
    return showError("jobs-error", err);
  }
  const body = document.querySelector("#jobs tbody");
  body.replaceChildren(
    ...list.items.map((j) =>
      el("tr", { "data-job": j.id },
        el("th", { scope: "row" }, `#${j.id}`),
        el("td", {}, `${j.model || ""}${j.version ? " v" + j.version : ""}`),
        el("td", { class: "job-status" }, j.status),
        progress(j),
        el("td", {}, `${when(j.created_at)} by ${j.created_by}`),
        output(j),
      ),
    ),
  );
  if (!list.items.length) body.append(el("tr", {}, el("td", { colspan: 6 }, "No job yet.")));
  pager(list.total, LIMIT, offset, (o) => {
    history.pushState(null, "", o ? `/jobs?offset=${o}` : "/jobs");
    render();
  });
  clearTimeout(timer);
  if (list.items.some((j) => j.status === "queued" || j.status === "running")) timer = setTimeout(render, 2000);
}

const form = document.getElementById("submit-form");
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  showError("submit-error", null);
  const file = document.getElementById("job-file").files[0];
  const model = document.getElementById("job-model").value.trim();
  const alias = document.getElementById("job-alias").value.trim();
  if (!file) return showError("submit-error", new Error("Choose a data set file."));
  try {
    const data = new FormData();
    data.append("file", file, file.name);
    const dataset = await upload("/api/v1/datasets", data, document.getElementById("job-progress"));
    const job = { model, input: dataset.uri };
    if (alias) job.alias = alias;
    await api("POST", "/api/v1/jobs", job);
    form.reset();
  } catch (err) {
    showError("submit-error", err);
  }
  await render();
});
window.addEventListener("popstate", render);
boot(render);
