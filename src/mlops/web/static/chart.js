// Live traffic charts: inline SVG drawn here (no chart library; ADR 0010).
import { api, el } from "./app.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 640;
const H = 160;
const PAD = { left: 56, right: 12, top: 10, bottom: 24 };
const REFRESH_MS = 5000;
const METRICS = [
  { key: "rps", title: "Requests per second", unit: "", format: (x) => x.toFixed(x < 10 ? 2 : 0) },
  { key: "p95_ms", title: "p95 latency (ms)", unit: " ms", format: (x) => x.toFixed(x < 10 ? 2 : 0) },
  { key: "error_rate", title: "Error rate", unit: "", format: (x) => (100 * x).toFixed(1) + "%" },
];

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function label(series) {
  return `v${series.version} (${series.role})`;
}

function chart(metric, data) {
  const now = Date.now() / 1000;
  const t0 = now - data.window_s;
  let max = 0;
  for (const s of data.series) for (const p of s.points) if (p[metric.key] !== null) max = Math.max(max, p[metric.key]);
  max = max > 0 ? max * 1.1 : metric.key === "error_rate" ? 0.01 : 1;
  const x = (t) => PAD.left + ((t - t0) / data.window_s) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const lines = data.series.map((s) => {
    const points = s.points.filter((p) => p[metric.key] !== null && p.t >= t0);
    const d = points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p[metric.key]).toFixed(1)}`).join(" ");
    return svg("path", { d: d || "M0,0", class: `line role-${s.role}`, "data-version": s.version, "data-points": points.length });
  });
  const axis = [
    svg("line", { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, class: "axis" }),
    svg("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom, class: "axis" }),
    svg("text", { x: PAD.left - 6, y: PAD.top + 10, "text-anchor": "end", class: "tick" }, metric.format(max)),
    svg("text", { x: PAD.left - 6, y: H - PAD.bottom, "text-anchor": "end", class: "tick" }, "0"),
    svg("text", { x: PAD.left, y: H - 6, class: "tick" }, "-15 min"),
    svg("text", { x: W - PAD.right, y: H - 6, "text-anchor": "end", class: "tick" }, "now"),
  ];
  const latest = data.series
    .map((s) => {
      const last = s.points.filter((p) => p[metric.key] !== null).at(-1);
      return `${label(s)}: ${last ? metric.format(last[metric.key]) : "no data"}`;
    })
    .join("; ");
  const title = `${metric.title}. Latest: ${latest || "no traffic"}`;
  return el("figure", { class: "chart", "data-metric": metric.key },
    el("figcaption", {}, metric.title),
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title }, svg("title", {}, title), ...axis, ...lines),
  );
}

function legend(data) {
  if (!data.series.length) return el("p", {}, "No prediction in the last 15 minutes.");
  return el("ul", { class: "legend" },
    data.series.map((s) => el("li", { class: `role-${s.role}` }, el("span", { class: "swatch", "aria-hidden": "true" }), label(s))),
  );
}

export function liveCharts(container, model) {
  const status = el("p", { role: "status", class: "muted" });
  const body = el("div");
  container.replaceChildren(body, status);
  async function refresh() {
    try {
      const data = await api("GET", `/api/v1/models/${encodeURIComponent(model)}/traffic?minutes=15`);
      body.replaceChildren(legend(data), ...METRICS.map((m) => chart(m, data)));
      status.textContent = `Updated ${new Date().toLocaleTimeString()} (source: ${data.source}).`;
      status.classList.remove("error");
    } catch (err) {
      status.textContent = `Charts unavailable: ${err.message}`;
      status.classList.add("error");
    }
  }
  refresh();
  return setInterval(refresh, REFRESH_MS);
}
