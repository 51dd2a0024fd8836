import { api, boot, el, me, showError } from "./app.js";
import { keyRows } from "./keys.js";

async function renderKeys() {
  try {
    const list = await api("GET", "/api/v1/api-keys?limit=200");
    document.querySelector("#keys tbody").replaceChildren(
      ...keyRows(list.items, { owner: false, errorId: "keys-error", onChange: renderKeys }),
    );
    if (!list.items.length) document.querySelector("#keys tbody").append(el("tr", {}, el("td", { colspan: 5 }, "No key yet.")));
  } catch (err) {
    showError("keys-error", err);
  }
}

document.getElementById("password-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError("password-error", null);
  try {
    await api("POST", "/api/v1/users/me/password", {
      old_password: document.getElementById("old-password").value,
      new_password: document.getElementById("new-password").value,
    });
    location.replace("/login"); // every token ended with the change, this one too
  } catch (err) {
    showError("password-error", err);
  }
});

document.getElementById("key-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError("keys-error", null);
  try {
    const key = await api("POST", "/api/v1/api-keys", {
      name: document.getElementById("key-name").value.trim(),
      role: document.getElementById("key-role").value,
    });
    document.getElementById("new-key-value").textContent = key.key;
    document.getElementById("new-key").hidden = false;
  } catch (err) {
    showError("keys-error", err);
  }
  await renderKeys();
});

boot(async () => {
  document.getElementById("account-who").textContent = `Signed in as ${me.username}, role ${me.role}.`;
  const roles = { viewer: ["viewer"], editor: ["viewer", "editor"], admin: ["viewer", "editor", "admin"] }[me.role];
  document.getElementById("key-role").replaceChildren(...roles.map((r) => el("option", {}, r)));
  await renderKeys();
});
