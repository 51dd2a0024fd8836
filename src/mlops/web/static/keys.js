// API key rows, shared by the account page (your keys) and the users page (every key).
import { api, el, showError, when } from "./app.js";

export function keyRows(items, { owner, errorId, onChange }) {
  return items.map((k) =>
    el("tr", {},
      el("th", { scope: "row" }, k.name),
      owner ? el("td", {}, k.owner) : null,
      el("td", {}, k.role),
      el("td", {}, when(k.expires_at)),
      el("td", {}, k.revoked_at ? `revoked ${when(k.revoked_at)}` : "active"),
      el("td", {},
        k.revoked_at
          ? ""
          : el("button", {
              type: "button",
              onclick: async () => {
                try {
                  await api("DELETE", `/api/v1/api-keys/${k.id}`);
                } catch (err) {
                  showError(errorId, err);
                }
                await onChange();
              },
            }, `Revoke key ${k.name}`),
      ),
    ),
  );
}
