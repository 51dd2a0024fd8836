import { allows, api, boot, el, showError, when } from "./app.js";
import { liveCharts } from "./chart.js";

const name = document.body.dataset.model;
const path = `/api/v1/models/${encodeURIComponent(name)}/deployment`;
const form = document.getElementById("policy-form");
const field = (id) => document.getElementById(id);

function fill(policy) {
  field("alias").value = policy.alias;
  field("canary-version").value = policy.canary ? policy.canary.version : "";
  field("canary-percent").value = policy.canary ? policy.canary.percent : "";
  field("shadow-version").value = policy.shadow ? policy.shadow.version : "";
  field("guard-on").checked = Boolean(policy.guard);
  if (policy.guard) {
    field("guard-error-rate").value = policy.guard.max_error_rate;
    field("guard-p95").value = policy.guard.max_p95_ms;
    field("guard-window").value = policy.guard.window_s;
    field("guard-min").value = policy.guard.min_requests;
  }
}

function showState(d) {
  const p = d.policy;
  const rows = [
    ["Primary", d.primary_version ? `v${d.primary_version} (alias ${p.alias})` : `alias ${p.alias} points at no version`],
    ["Canary", p.canary ? `v${p.canary.version} at ${p.canary.percent}% of requests` : "none"],
    ["Shadow", p.shadow ? `v${p.shadow.version}` : "none"],
    ["Guard", p.guard ? `error rate ≤ ${p.guard.max_error_rate}, p95 per row ≤ ${p.guard.max_p95_ms} ms over ${p.guard.window_s} s after ${p.guard.min_requests} requests` : "none"],
    ["Changed", d.updated_by ? `by ${d.updated_by}, ${when(d.updated_at)}` : "never (default policy)"],
  ];
  const failures = Object.entries(d.status.load_failures || {});
  if (failures.length) rows.push(["Failed to load", failures.map(([v, why]) => `v${v}: ${typeof why === "string" ? why : JSON.stringify(why)}`).join("; ")]);
  field("state").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const trip = d.status.canary_rollback;
  const box = field("guard-trip");
  box.hidden = !trip;
  if (trip) box.textContent = `The guard took canary v${trip.version} out of traffic at ${when(trip.at)}: ${trip.reason}`;
}

function number(id) {
  const raw = field(id).value.trim();
  return raw === "" ? null : Number(raw);
}

function policyOf() {
  const policy = { alias: field("alias").value.trim() };
  const canaryVersion = number("canary-version");
  if (canaryVersion !== null) policy.canary = { version: canaryVersion, percent: number("canary-percent") };
  const shadowVersion = number("shadow-version");
  if (shadowVersion !== null) policy.shadow = { version: shadowVersion };
  if (field("guard-on").checked) {
    policy.guard = {
      max_error_rate: number("guard-error-rate"),
      max_p95_ms: number("guard-p95"),
      window_s: number("guard-window"),
      min_requests: number("guard-min"),
    };
  }
  return policy;
}

function check(policy) {
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(policy.alias)) return ["alias", "The alias is lower-case letters, digits, '.', '_' and '-'."];
  if (policy.canary && !(policy.canary.percent > 0 && policy.canary.percent <= 100)) return ["canary-percent", "A canary takes more than 0 and at most 100 percent of requests."];
  if (policy.guard && !policy.canary) return ["guard-on", "A guard watches a canary: set a canary version, or untick the guard."];
  return null;
}

async function render(refill) {
  try {
    const d = await api("GET", path);
    if (refill) fill(d.policy); // not on refreshes: they would overwrite what is being typed
    showState(d);
    showError("deployment-error", null);
  } catch (err) {
    showError("deployment-error", err);
  }
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  showError("policy-error", null);
  const policy = policyOf();
  const problem = check(policy);
  if (problem) {
    showError("policy-error", new Error(problem[1]));
    field(problem[0]).setAttribute("aria-invalid", "true");
    field(problem[0]).focus();
    return;
  }
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  try {
    const d = await api("PUT", path, policy);
    fill(d.policy);
    showState(d);
  } catch (err) {
    showError("policy-error", err);
  }
});

const crumb = field("crumb");
crumb.textContent = name;
crumb.href = `/models/${encodeURIComponent(name)}`;
field("heading").textContent = `Deployment of ${name}`;
boot(async () => {
  if (!allows("editor")) for (const node of form.querySelectorAll("input")) node.disabled = true;
  await render(true);
  liveCharts(field("charts"), name);
  setInterval(() => render(false), 5000);
});
