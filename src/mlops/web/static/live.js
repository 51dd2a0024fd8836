import { boot } from "./app.js";
import { liveCharts } from "./chart.js";

const name = document.body.dataset.model;
const crumb = document.getElementById("crumb");
crumb.textContent = name;
crumb.href = `/models/${encodeURIComponent(name)}`;
document.getElementById("heading").textContent = `Live traffic of ${name}`;
boot(async () => {
  liveCharts(document.getElementById("charts"), name);
});
