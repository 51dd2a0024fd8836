import { api, showError } from "./app.js";

const form = document.getElementById("login-form");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("login-error", null);
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    showError("login-error", new Error("Enter your username and password."));
    return;
  }
  try {
    await api("POST", "/api/v1/auth/session", { username, password });
  } catch (err) {
    showError("login-error", err);
    form.password.focus();
    return;
  }
  const next = new URL(new URLSearchParams(location.search).get("next") || "/models", location.origin);
  // Only a page of this site: never an open redirect.
  location.assign(next.origin === location.origin ? next.pathname + next.search : "/models");
});
document.getElementById("username").focus();
