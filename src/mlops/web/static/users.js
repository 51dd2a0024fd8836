import { api, boot, el, showError } from "./app.js";
import { keyRows } from "./keys.js";

async function update(username, change) {
  try {
    await api("PATCH", `/api/v1/users/${encodeURIComponent(username)}`, change);
    showError("users-error", null);
  } catch (err) {
    showError("users-error", err);
  }
  await render();
}

function roleSelect(u) {
  const select = el("select", { id: `role-${u.id}`, "aria-label": `Role of ${u.username}` },
    ["viewer", "editor", "admin"].map((r) => el("option", { value: r, selected: r === u.role }, r)),
  );
  select.addEventListener("change", () => update(u.username, { role: select.value }));
  return select;
}

async function render() {
  let users;
  let keys;
  try {
    users = await api("GET", "/api/v1/users?limit=200");
    keys = await api("GET", "/api/v1/api-keys?all=true&limit=200");
  } catch (err) {
    // A non-admin lands here by URL: the API's 403 says why.
    for (const node of document.querySelectorAll("main form, main table")) node.remove();
    return showError("users-error", err);
  }
  document.querySelector("#users tbody").replaceChildren(
    ...users.items.map((u) =>
      el("tr", {},
        el("th", { scope: "row" }, u.username),
        el("td", {}, roleSelect(u)),
        el("td", {}, u.disabled ? "disabled" : "active"),
        el("td", {},
          el("button", { type: "button", onclick: () => update(u.username, { disabled: !u.disabled }) },
            `${u.disabled ? "Enable" : "Disable"} ${u.username}`),
        ),
      ),
    ),
  );
  document.querySelector("#all-keys tbody").replaceChildren(
    ...keyRows(keys.items, { owner: true, errorId: "users-error", onChange: render }),
  );
}

const form = document.getElementById("user-form");
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  showError("user-error", null);
  try {
    await api("POST", "/api/v1/users", {
      username: document.getElementById("user-name").value.trim(),
      password: document.getElementById("user-password").value,
      role: document.getElementById("user-role").value,
    });
    form.reset();
  } catch (err) {
    showError("user-error", err);
  }
  await render();
});

boot(render);
